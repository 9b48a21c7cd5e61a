"""The queue's Redis is down: sign-in and profile edits still succeed, their jobs wait in the SQL outbox.

The queue lives on its own Redis (QUEUE_REDIS_URL), which the test stops; sessions
stay up on the other one. Workers drain the outbox by themselves once the queue is
back, and `flask --app app jobs drain` does it by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from subprocess import Popen
from typing import Any

import pytest
import requests
from rq import Queue

from devstack.processes import stop
from jobs.queues import DEFAULT_QUEUE, REQUEST_ID_META, SERIALIZER
from tests.reliability.helpers import edit_profile, rows_by_subject, start_reliability_stack
from tests.support.browserless import sign_in
from tests.support.faults import Stopwatch
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sessions and the queue on two Redis servers, the provider, one web process, one worker."""
    running = start_reliability_stack(
        tmp_path_factory.mktemp("outbox"), separate_queue=True, provider=True, web=1, workers=1
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def queue_down(stack: Stack) -> Iterator[None]:
    """Stop the queue's Redis for the test (restarted afterwards if the test did not)."""
    stack.queue.stop()
    try:
        yield
    finally:
        if stack.queue.process is None:
            stack.queue.start()


def job_status(stack: Stack) -> tuple[int, dict[str, Any]]:
    """`flask --app app jobs status --json`: its exit code and counts."""
    result = stack.flask("jobs", "status", "--json", check=False)
    return result.returncode, json.loads(result.stdout.splitlines()[0])["counts"]


def sign_in_and_edit(stack: Stack, subject: str, display_name: str, request_id: str | None = None) -> None:
    """A user signs in and saves a profile edit; both must succeed with the queue down."""
    with requests.Session() as http:
        if request_id:
            http.headers["X-Request-ID"] = request_id  # as a proxy in front would send it
        landing = sign_in(http, stack.web_url, subject, next_path="/profile")
        assert landing.status_code == 200, landing.text
        assert landing.url.endswith("/profile")
        saved = edit_profile(http, stack.web_url, display_name=display_name)
        assert saved.status_code == 302, saved.text
        page = http.get(f"{stack.web_url}/profile", timeout=10)
        assert "Your profile has been saved." in page.text
        assert f'value="{display_name}"' in page.text


def test_the_worker_drains_the_outbox_once_the_queue_is_back(
    stack: Stack, queue_down: None, timings: dict[str, float]
) -> None:
    sign_in_and_edit(stack, "offline-alice", "Alice Offline")

    code, counts = job_status(stack)
    assert code == 1  # the queue is unreachable, and the command says so
    assert counts["outbox"] == 4  # the sign-in job and the profile job, and the audit event of each
    assert counts["queued"] is None
    assert "offline-alice" not in rows_by_subject(stack)

    stack.queue.start()
    watch = Stopwatch()
    rows = wait_until(
        lambda: rows_by_subject(stack).get("offline-alice"),
        timeout=30,
        what=f"the outbox to be drained and the user persisted\n{stack.log('worker0')}",
    )
    timings["queue Redis back: outbox drained and user persisted after (test timings)"] = watch.elapsed()
    wait_until(lambda: rows_by_subject(stack)["offline-alice"][0]["display_name"] == "Alice Offline", timeout=15)
    assert len(rows) == 1
    idle = (0, {"queued": 0, "started": 0, "scheduled": 0, "failed": 0, "outbox": 0})
    # A job's row is committed just before the job ends: wait for the last one to end.
    wait_until(lambda: job_status(stack) == idle, timeout=30, what="every job to end")


def test_jobs_drain_moves_the_outbox_by_hand(stack: Stack, queue_down: None) -> None:
    worker: Popen = stack.processes.pop("worker0")
    stop([worker])  # nobody drains but the operator
    try:
        sign_in_and_edit(stack, "offline-bob", "Bob Offline", request_id="outbox-bob-7")

        refused = stack.flask("jobs", "drain", check=False)
        assert refused.returncode == 1
        assert "the queue is still unavailable" in refused.stderr
        assert job_status(stack)[1]["outbox"] == 4  # two persistence jobs, two audit events

        stack.queue.start()
        drained = stack.flask("jobs", "drain")
        assert "moved 4 job(s) from the outbox to the queue; 0 left" in drained.stdout
        assert job_status(stack) == (0, {"queued": 4, "started": 0, "scheduled": 0, "failed": 0, "outbox": 0})
        # Each drained job carries the id of the request that queued it, as if the queue had taken it at once.
        queued = Queue(DEFAULT_QUEUE, connection=stack.queue.client(), serializer=SERIALIZER).get_jobs()
        assert [job.meta.get(REQUEST_ID_META) for job in queued] == ["outbox-bob-7"] * 4
    finally:
        stack.start_worker("worker0")
    wait_until(
        lambda: [row["display_name"] for row in rows_by_subject(stack).get("offline-bob", [])] == ["Bob Offline"],
        timeout=30,
        what="the drained jobs to run",
    )
