"""A worker SIGKILLed mid-job: the job runs again, within a bounded time, and leaves exactly one row.

Runs with the production default timings (config.BaseConfig), so the recovery
times printed at the end are the ones docs/reliability.md promises.
"""

from __future__ import annotations

import pytest
from rq.job import JobStatus

from config import BaseConfig
from tests.reliability.helpers import (
    StartStack,
    blocked_upserts,
    enqueue_records,
    job_status,
    record,
    registry_counts,
    rows_by_subject,
    users_table_locked,
)
from tests.support.faults import Stopwatch, is_running, kill, kill_tree, work_horse
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DEFAULT_TIMINGS = {
    "WORKER_MONITOR_INTERVAL": BaseConfig.WORKER_MONITOR_INTERVAL,
    "WORKER_ABANDON_GRACE": BaseConfig.WORKER_ABANDON_GRACE,
    "WORKER_MAINTENANCE_INTERVAL": BaseConfig.WORKER_MAINTENANCE_INTERVAL,
    "JOB_RETRY_INTERVALS": BaseConfig.JOB_RETRY_INTERVALS,
}
# The documented bound for a dead worker: its job's heartbeat expires, then the next
# maintenance run (idle workers wake every third of the interval) retries it at once.
WORKER_DEATH_BOUND = (
    BaseConfig.WORKER_MONITOR_INTERVAL
    + BaseConfig.WORKER_ABANDON_GRACE
    + BaseConfig.WORKER_MAINTENANCE_INTERVAL * 4 / 3
    + 5  # starting the replacement worker and running the job
)


@pytest.fixture
def stack(start_test_stack: StartStack) -> Stack:
    """Redis, PostgreSQL (the test's `postgres_url`) and one worker with the production default timings."""
    return start_test_stack("postgresql", settings=DEFAULT_TIMINGS)


def start_job_and_block_it(stack: Stack, postgres_url: str, subject: str) -> str:
    """Enqueue a persistence job and wait until it is stuck inside its INSERT (the table is locked)."""
    [job_id] = enqueue_records(stack, [record(subject, profile_version=7)])
    wait_until(lambda: blocked_upserts(postgres_url) == 1, timeout=20, what="the job to block on the users table")
    assert job_status(stack, job_id) == JobStatus.STARTED
    return job_id


def assert_recovered(stack: Stack, job_id: str, subject: str, *, timeout: float) -> float:
    """Wait until the job has finished; exactly one, up-to-date row must result."""
    watch = Stopwatch()
    wait_until(
        lambda: job_status(stack, job_id) == JobStatus.FINISHED,
        timeout=timeout,
        interval=0.2,
        what=f"the job to run again and finish\n{stack.log('worker0')}",
    )
    elapsed = watch.elapsed()
    rows = rows_by_subject(stack)[subject]
    assert len(rows) == 1
    assert rows[0]["profile_version"] == 7
    assert registry_counts(stack)["failed"] == 0
    return elapsed


def test_a_killed_work_horse_is_noticed_at_once_and_its_job_runs_again(
    stack: Stack, postgres_url: str, timings: dict[str, float]
) -> None:
    worker = stack.processes["worker0"]
    with users_table_locked(postgres_url):
        job_id = start_job_and_block_it(stack, postgres_url, "horse-victim")
        horse = work_horse(worker.pid)
        assert horse is not None
        kill(horse)
        watch = Stopwatch()
        wait_until(lambda: not is_running(horse), timeout=5, what="the work horse to die")
    assert_recovered(stack, job_id, "horse-victim", timeout=15)
    timings["work horse SIGKILLed: job finished again after (default settings)"] = watch.elapsed()
    assert worker.poll() is None  # the worker itself carries on


def test_a_killed_worker_leaves_its_job_to_the_next_worker_within_the_documented_bound(
    stack: Stack, postgres_url: str, timings: dict[str, float]
) -> None:
    worker = stack.processes["worker0"]
    with users_table_locked(postgres_url):
        job_id = start_job_and_block_it(stack, postgres_url, "worker-victim")
        killed = kill_tree(worker.pid)  # the worker, its work horse and its scheduler, as an OOM kill would
        watch = Stopwatch()
        stack.forget("worker0")
        assert len(killed) >= 3
    assert job_status(stack, job_id) == JobStatus.STARTED  # nobody has noticed yet
    stack.start_worker("worker0")  # the supervisor's restart
    assert_recovered(stack, job_id, "worker-victim", timeout=WORKER_DEATH_BOUND)
    timings["whole worker SIGKILLed: job finished again after (default settings)"] = watch.elapsed()
    assert watch.elapsed() <= WORKER_DEATH_BOUND
