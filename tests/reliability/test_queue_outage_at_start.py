"""A worker started while the queue's Redis is down: it says what it waits for, and starts once Redis is back.

RQ's Worker connects as it is built, before the outage handling of jobs/outage.py can take over; a
supervisor that starts the worker before Redis (or restarts it during an outage) must not get a
raw traceback and a dead process. A one-off `worker --burst` stops at once with the same message.
"""

from __future__ import annotations

import pytest

from tests.reliability.helpers import StartStack, enqueue_records, record, rows_by_subject
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
