"""The profile row is written by the worker process, not by the web request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.integration.pages import form_values
from tests.integration.persisted import user_rows, wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, sign_in
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

QUEUE_KEY = "rq:queue:gatehouse"


@pytest.fixture(scope="module")
def worker_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own, since the test stops and starts its worker."""
    running = start_stack(tmp_path_factory.mktemp("worker"))
    try:
        yield running
    finally:
        running.stop()


def test_profile_row_is_written_by_the_worker_process(
    worker_stack: Stack, browser: requests.Session, subject: str
) -> None:
    page = sign_in(browser, worker_stack.web_url, subject, next_path="/profile")
    row_before = wait_for_row(worker_stack, subject, display_name=subject)
    worker_stack.stop_process("worker0")

    edit = browser.post(
        f"{worker_stack.web_url}/profile",
        data={"csrf_token": csrf_token(page.text), "display_name": "Queued Edit", "locale": "de", "timezone": "UTC"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert edit.status_code == 302
    # The user sees the edit at once; the database has not changed, the job waits on the queue.
    assert (
        form_values(browser.get(f"{worker_stack.web_url}/profile", timeout=TIMEOUT).text)["display_name"]
        == "Queued Edit"
    )
    assert user_rows(worker_stack, subject) == [row_before]
    with worker_stack.redis() as client:
        assert client.llen(QUEUE_KEY) == 2  # the edit's persistence job and its audit event

    worker_stack.start_worker("worker1")

    row = wait_for_row(worker_stack, subject, display_name="Queued Edit")
    assert row["locale"] == "de"
    assert len(user_rows(worker_stack, subject)) == 1
    with worker_stack.redis() as client:
        assert client.llen(QUEUE_KEY) == 0
