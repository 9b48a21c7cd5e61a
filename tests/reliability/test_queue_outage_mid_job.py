"""The queue's Redis goes away while a worker is inside a job or a batch: the worker stays up, and once
Redis is back every job ends, each user has one row, and new jobs run.

RQ's own loop would quit here: it survives a lost connection only while it waits for a job.
The jobs are held inside their INSERT by a PostgreSQL lock, so the outage always starts mid-job.
"""

from __future__ import annotations

import pytest

from tests.reliability.helpers import (
    StartStack,
    blocked_upserts,
    enqueue_records,
    record,
    registry_counts,
    rows_by_subject,
    users_table_locked,
)
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

IDLE = {"queued": 0, "started": 0, "scheduled": 0, "failed": 0}
WORKER = "outage-worker"


@pytest.fixture
def stack(start_test_stack: StartStack) -> Stack:
    """PostgreSQL, and the queue on its own Redis with AOF (restarts keep the jobs); no worker yet."""
    return start_test_stack("postgresql", separate_queue=True, queue_appendonly=True, workers=0)


@pytest.mark.parametrize("count", [1, 5], ids=["a single job", "a batch"])
def test_the_worker_outlives_a_queue_outage_in_the_middle_of_its_jobs(stack: Stack, count: int) -> None:
    names = [f"mid-outage-{count}-{index}" for index in range(count)]
    with users_table_locked(stack.database_url):
        enqueue_records(stack, [record(name) for name in names])  # queued before the worker starts: one batch
        worker = stack.start_worker(WORKER)
        wait_until(lambda: blocked_upserts(stack.database_url) == 1, timeout=30, what="the worker to be mid-job")
        stack.queue.stop()
    # The rows commit; the worker cannot tell the queue, and must not quit over it.
    wait_until(lambda: all(name in rows_by_subject(stack) for name in names), timeout=30, what="the rows")
    # Where the worker meets the outage depends on timing (seen under load): in the job's bookkeeping (our
    # warning, jobs/outage.py) or in RQ's wait for the next job, which retries. Either way it must stay up.
    noticed = ("lost the queue Redis", "could not connect to Redis instance")
    wait_until(
        lambda: any(text in stack.log(WORKER) for text in noticed) or worker.poll() is not None,
        timeout=60,
        what=f"the worker to notice the outage\n{stack.log(WORKER)}",
    )
    assert worker.poll() is None, f"the worker quit\n{stack.log(WORKER)}"

    stack.queue.start()
    enqueue_records(stack, [record(f"after-outage-{count}")])
    wait_until(
        lambda: f"after-outage-{count}" in rows_by_subject(stack),
        timeout=60,
        what=f"a job queued after the outage to run\n{stack.log(WORKER)}",
    )
    # The interrupted jobs end too: retried once their heartbeat lapses, harmlessly (one row each).
    wait_until(lambda: registry_counts(stack) == IDLE, timeout=60, what=f"every job to end\n{stack.log(WORKER)}")
    assert worker.poll() is None, stack.log(WORKER)
    rows = rows_by_subject(stack)
    assert all(len(rows[name]) == 1 for name in [*names, f"after-outage-{count}"])
    if count > 1:
        assert f"batch of {count} jobs" in stack.log(WORKER)
