"""A worker started while the queue's Redis is down: it says what it waits for, and starts once Redis is back.

RQ's Worker connects as it is built, before the outage handling of jobs/outage.py can take over; a
supervisor that starts the worker before Redis (or restarts it during an outage) must not get a
raw traceback and a dead process. A one-off `worker --burst` stops at once with the same message.
"""

from __future__ import annotations

import pytest

from tests.reliability.helpers import StartStack, enqueue_records, record, rows_by_subject
from tests.support.cli import run_flask
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

WORKER = "early-worker"
WAITING = "the queue Redis (QUEUE_REDIS_URL) does not answer"


@pytest.fixture
def stack(start_test_stack: StartStack) -> Stack:
    """SQLite, and the queue on its own Redis with AOF (a job queued before the outage outlives it); no worker."""
    return start_test_stack("sqlite", separate_queue=True, queue_appendonly=True, workers=0)


def test_a_worker_started_during_a_queue_outage_waits_and_then_runs_the_jobs(stack: Stack) -> None:
    enqueue_records(stack, [record("queued-before-the-outage")])
    stack.queue.stop()
    worker = stack.start_worker(WORKER)
    wait_until(
        lambda: WAITING in stack.log(WORKER) or worker.poll() is not None,
        timeout=60,
        what=f"the worker to say it waits for the queue Redis\n{stack.log(WORKER)}",
    )
    assert worker.poll() is None, f"the worker quit\n{stack.log(WORKER)}"
    assert "Traceback" not in stack.log(WORKER)

    stack.queue.start()
    enqueue_records(stack, [record("queued-after-the-outage")])
    wait_until(
        lambda: {"queued-before-the-outage", "queued-after-the-outage"} <= set(rows_by_subject(stack)),
        timeout=60,
        what=f"both jobs to run once Redis is back\n{stack.log(WORKER)}",
    )
    assert "the queue Redis answers after" in stack.log(WORKER)
    assert worker.poll() is None, stack.log(WORKER)


def test_a_burst_worker_started_during_a_queue_outage_stops_with_a_clear_message(stack: Stack) -> None:
    stack.queue.stop()
    done = stack.flask("worker", "--burst", check=False)
    assert done.returncode == 1, done.stderr
    assert f"Error: {WAITING}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_refused_by_the_queue_redis_stops_instead_of_waiting(start_test_stack: StartStack) -> None:
    """A wrong password is a setting to fix: the worker names it and exits 1, it does not wait for ever."""
    stack = start_test_stack("sqlite", separate_queue=True, workers=0, redis_password="the-queue-password")
    wrong = stack.queue.url.replace("the-queue-password", "not-the-password")
    done = run_flask("worker", env={**stack.env, "QUEUE_REDIS_URL": wrong}, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "the queue Redis (QUEUE_REDIS_URL) refused the worker's credentials" in done.stderr
    assert WAITING not in done.stderr and "Traceback" not in done.stderr
