"""Redis goes away and comes back: fast 503 pages meanwhile, readiness says why, service resumes by itself."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import requests

from tests.integration.pages import texts, title
from tests.integration.persisted import wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, session_id, sign_in
from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (its Redis is stopped), with an append-only Redis so sessions survive a restart."""
    # Only once the worker is up: a test that stops Redis must not catch it still starting (it would exit).
    running = start_stack(tmp_path_factory.mktemp("redis-outage"), redis_appendonly=True, wait_for_workers=True)
    try:
        yield running
    finally:
        running.stop()


def timed_get(http: requests.Session, url: str) -> tuple[requests.Response, float]:
    """GET without following redirects; also return how long the answer took (failing after 5 s)."""
    started = time.monotonic()
    try:
        response = http.get(url, allow_redirects=False, timeout=5)
    except requests.Timeout:
        pytest.fail(f"{url} gave no answer within 5 s")
    return response, time.monotonic() - started


def profile_once_redis_is_back(http: requests.Session, web: str) -> requests.Response:
    """Poll /profile until it answers 200 again; return that page."""

    def answered() -> requests.Response | None:
        page = http.get(f"{web}/profile", allow_redirects=False, timeout=TIMEOUT)
        return page if page.status_code == 200 else None

    return wait_until(answered, timeout=TIMEOUT, what="/profile to answer 200 again")


def test_redis_outage_gives_fast_503_pages_and_service_resumes_by_itself(
    outage_stack: Stack, browser: requests.Session, subject: str
) -> None:
    web = outage_stack.web_url
    sign_in(browser, web, subject, next_path="/profile")
    sid = session_id(browser)
    wait_for_row(outage_stack, subject, display_name=subject)

    outage_stack.stop_redis()
    try:
        for path in ("/profile", "/dashboard", "/"):
            response, elapsed = timed_get(browser, f"{web}{path}")
            assert response.status_code == 503, path
            assert elapsed < 1.0, f"{path} took {elapsed:.2f}s"
            assert title(response.text).startswith("Temporarily unavailable"), path
            assert "Traceback" not in response.text
            assert "redis" not in response.text.lower()
        health, _ = timed_get(browser, f"{web}/healthz")
        assert health.status_code == 200
        ready, elapsed = timed_get(browser, f"{web}/readyz")
        assert ready.status_code == 503
        assert elapsed < 1.0
        assert ready.json()["checks"]["redis"] == "down"
        assert ready.json()["checks"]["database"] == "ok"
    finally:
        outage_stack.start_redis()

    wait_until(
        lambda: timed_get(browser, f"{web}/readyz")[0].status_code == 200, timeout=TIMEOUT, what="/readyz to answer 200"
    )
    page = profile_once_redis_is_back(browser, web)
    # The session survived (append-only Redis) and the same browser is still signed in.
    assert session_id(browser) == sid
    assert texts(page.text, "signed-in-as") == [subject]
    # The worker reconnected by itself too: an edit made now reaches the database.
    edit = browser.post(
        f"{web}/profile",
        data={
            "csrf_token": csrf_token(page.text),
            "display_name": "After the outage",
            "locale": "en",
            "timezone": "UTC",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert edit.status_code == 302
    wait_for_row(outage_stack, subject, display_name="After the outage", timeout=60)


def test_a_frozen_redis_gives_503_pages_within_a_second(
    outage_stack: Stack, browser: requests.Session, subject: str
) -> None:
    # A Redis that accepts connections but never answers (stopped process, full
    # network buffer) is the slow case: only short socket timeouts keep pages fast.
    web = outage_stack.web_url
    sign_in(browser, web, subject, next_path="/profile")
    redis_process = outage_stack.sessions.process
    assert redis_process is not None

    redis_process.send_signal(signal.SIGSTOP)
    try:
        response, elapsed = timed_get(browser, f"{web}/profile")
    finally:
        redis_process.send_signal(signal.SIGCONT)

    assert response.status_code == 503
    assert elapsed < 1.0, f"/profile took {elapsed:.2f}s"
    assert "Traceback" not in response.text
    page = profile_once_redis_is_back(browser, web)
    assert texts(page.text, "signed-in-as") == [subject]
