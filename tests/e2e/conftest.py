"""Fixtures for the end-to-end suite: databases, whole deployments, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.postgres import DATABASES, database_url_for
from tests.support.stack import ARTIFACTS, Stack, start_stack

SCREENSHOTS = ARTIFACTS / "screenshots"

# Pages here wait on real servers (token exchange, userinfo): allow more than Playwright's 5 s.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module", params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """The database backend a module's deployment runs on: every module using this runs on both."""
    return request.param


@pytest.fixture(scope="module")
def deployment(
    database: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Redis, the certified provider, one worker and one gunicorn web process, on `database`."""
    workdir = tmp_path_factory.mktemp(f"e2e-{database}")
    running = start_stack(
        workdir, provider="certified", database_url=database_url_for(database, request, workdir, migrated=True)
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (its own browsers are never downloaded: Debian's Chromium is used)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless; Playwright gives it a fresh temporary user-data-dir and deletes it on close."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def user_login() -> str:
    """A login no other test uses, so tests sharing a deployment never see each other's data."""
    return f"ada-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def open_context(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], BrowserContext]]:
    """Open fresh browser profiles (no cookies, no history, no cache); each is closed after the test."""
    opened: list[BrowserContext] = []

    def open_one() -> BrowserContext:
        context = chromium.new_context(viewport={"width": 1100, "height": 800})
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    try:
        yield open_one
    finally:
        for context in opened:
            _keep_failure_screenshots(context, request)
            context.close()


@pytest.fixture
def context(open_context: Callable[[], BrowserContext]) -> BrowserContext:
    """The test's browser profile."""
    return open_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """One tab of the test's browser profile."""
    return context.new_page()


@pytest.fixture
def screenshot(database: str) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as test-artifacts/screenshots/<database>/<name>.png."""

    def save(page: Page, name: str) -> Path:
        path = SCREENSHOTS / database / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Tests of other modules, on other pytest-xdist workers, may save the same name at the same moment: each
        # writes a file of its own and renames it into place, so no one ever reads another's half-written file.
        written = path.with_name(f"{name}.{os.getpid()}.partial")
        page.screenshot(path=str(written), type="png", full_page=True)
        assert written.read_bytes().startswith(b"\x89PNG"), f"{path} is not a PNG"
        written.replace(path)
        return path

    return save


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Remember each phase's outcome on the test item, so fixtures can act on failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _keep_failure_screenshots(context: BrowserContext, request: pytest.FixtureRequest) -> None:
    """A failed browser test leaves a screenshot of each open tab under test-artifacts/failures/."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    folder = ARTIFACTS / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
    for index, tab in enumerate(context.pages):
        tab.screenshot(path=str(folder / f"{name}-{index}.png"), full_page=True)
