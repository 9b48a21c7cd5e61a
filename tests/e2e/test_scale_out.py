"""Two gunicorn web processes and two workers sharing one Redis and one PostgreSQL: no state lives in a process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from jobs.queues import QUEUES, SERIALIZER, waiting_count
from tests.e2e.http_sign_in import sign_in as sign_in_over_http
from tests.e2e.pages import provider_name, sign_in, signed_in_as
from tests.support.polling import wait_until
from tests.support.postgres import database_url_for
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SIGN_INS = 200
CONCURRENCY = 8


@pytest.fixture(scope="module")
def scaled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, PostgreSQL, the certified provider, two workers, two gunicorns (2 processes x 4 threads each)."""
    workdir = tmp_path_factory.mktemp("scale-out")
    running = start_stack(
        workdir,
        provider="certified",
        database_url=database_url_for("postgresql", request, workdir, migrated=True),
        web=2,
        workers=2,
        web_workers=2,
        # Sign-in is rate limited per client address, and every simulated user here comes from 127.0.0.1.
        extra_env={"LOGIN_RATE_LIMIT": "100000 per minute", "CALLBACK_RATE_LIMIT": "100000 per minute"},
    )
    try:
        yield running
    finally:
        running.stop()


def queues_drained(redis_port: int) -> bool:
    """True when no job is waiting or running on any Gatehouse queue, and none has failed."""
    with Redis(port=redis_port, socket_timeout=5) as connection:
        for name in QUEUES:
            queue = Queue(name, connection=connection, serializer=SERIALIZER)
            if waiting_count(queue) or StartedJobRegistry(queue=queue).count:
                return False
            assert FailedJobRegistry(queue=queue).count == 0, "a persistence job failed"
    return True


def test_a_session_and_profile_edits_are_shared_by_both_web_processes(
    page: Page, scaled: Stack, user_login: str
) -> None:
    """Signed in through one web process, the other serves the same session; an edit on either shows on both at once."""
    first, second = scaled.web_urls
    sign_in(page, first, scaled.provider.url, user_login, "/profile")

    page.goto(f"{second}/dashboard")
    expect(page.get_by_test_id("api-data")).to_contain_text(f"{user_login}@example.test")
    assert signed_in_as(page) == provider_name(user_login)

    page.goto(f"{first}/profile")
    page.fill("#display_name", "Edited On First")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_have_text("Your profile has been saved.")
    page.goto(f"{second}/profile")
    expect(page.locator("#display_name")).to_have_value("Edited On First")
    assert signed_in_as(page) == "Edited On First"

    page.fill("#display_name", "Edited On Second")
    page.select_option("#timezone", "America/Sao_Paulo")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_have_text("Your profile has been saved.")
    page.goto(f"{first}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Edited On Second")

    saved = wait_until(
        lambda: (row := scaled.user(user_login)) and row["display_name"] == "Edited On Second" and row,
        timeout=30,
        interval=0.3,
        what="the workers to persist the last edit",
    )
    assert saved["timezone"] == "America/Sao_Paulo"


def test_200_sign_ins_spread_over_both_web_processes_become_exactly_200_users(scaled: Stack) -> None:
    """Each sign-in goes through the provider's real forms on alternating web processes; the workers store each once."""
    prefix = f"load-{uuid.uuid4().hex[:6]}"
    logins = [f"{prefix}-{index:03d}" for index in range(SIGN_INS)]

    def one(index: int) -> str:
        with requests.Session() as http:
            base_url = scaled.web_urls[index % len(scaled.web_urls)]
            page = sign_in_over_http(http, base_url, logins[index], "/profile")
            assert provider_name(logins[index]) in page.text
            return base_url

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        served_by = list(pool.map(one, range(SIGN_INS)))
    assert {url: served_by.count(url) for url in scaled.web_urls} == dict.fromkeys(scaled.web_urls, SIGN_INS // 2)

    def mine() -> list[dict]:
        return [row for row in scaled.users() if row["subject"].startswith(prefix)]

    wait_until(lambda: len(mine()) >= SIGN_INS, timeout=120, interval=1, what="every sign-in to be persisted")
    wait_until(lambda: queues_drained(scaled.redis_port), timeout=60, what="the queues to drain")
    rows = mine()
    assert len(rows) == SIGN_INS
    assert sorted(row["subject"] for row in rows) == logins
    assert {row["email"] for row in rows} == {f"{login}@example.test" for login in logins}


def test_the_gunicorn_config_serves_with_its_access_log_free_of_codes(scaled: Stack) -> None:
    """gunicorn.conf.py is in effect: threaded workers answer, and the access log never records ?code=."""
    with requests.Session() as http:
        sign_in_over_http(http, scaled.web_url, f"log-{uuid.uuid4().hex[:6]}", "/")
    log = (Path(scaled.env["GATEHOUSE_TEST_LOGS"]) / "web0.log").read_text()
    assert '"GET /auth/callback HTTP/1.1" 302' in log
    assert "code=" not in log and "state=" not in log
