"""The queue's Redis restarts or crashes: with AOF on, queued jobs survive; an evicting Redis is refused."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.reliability.helpers import enqueue_records, record, registry_counts, rows_by_subject, start_reliability_stack
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

JOBS = 20


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator:
    """Start a worker-less stack whose queue Redis has the given persistence settings."""
    started: list[Stack] = []

    def start(*, appendonly: bool, redis_args: Sequence[str] = ()) -> Stack:
        stack = start_reliability_stack(
            tmp_path / str(len(started)),
            separate_queue=True,
            queue_appendonly=appendonly,
            queue_redis_args=redis_args,
            workers=0,
        )
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()


def queue_jobs(stack: Stack, prefix: str) -> list[str]:
    """Queue JOBS persistence jobs (no worker runs yet); returns their subjects."""
    subjects = [f"{prefix}-{index}" for index in range(JOBS)]
    enqueue_records(stack, [record(subject) for subject in subjects])
    assert registry_counts(stack)["queued"] == JOBS
    return subjects


def assert_all_persisted(stack: Stack, subjects: list[str]) -> None:
    """Start a worker and wait until every queued job has left exactly one row."""
    stack.start_worker("worker0")
    wait_until(
        lambda: all(subject in rows_by_subject(stack) for subject in subjects),
        timeout=60,
        what=f"every queued job to run\n{stack.log('worker0')}",
    )
    assert all(len(rows) == 1 for rows in rows_by_subject(stack).values())


def test_queued_jobs_survive_a_redis_restart_with_aof(start_stack) -> None:
    stack = start_stack(appendonly=True)
    subjects = queue_jobs(stack, "restart")
    stack.queue.stop()  # SIGTERM: Redis writes out its AOF and exits
    stack.queue.start()
    assert registry_counts(stack)["queued"] == JOBS
    assert_all_persisted(stack, subjects)


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_queued_jobs_survive_a_redis_crash_with_aof(start_stack, fsync: str) -> None:
    """SIGKILL: Redis writes the AOF before it answers, so a process crash loses no acknowledged job.

    (`everysec` may still lose up to a second of jobs if the machine itself loses power; `always` not.)
    """
    stack = start_stack(appendonly=True, redis_args=("--appendfsync", fsync))
    subjects = queue_jobs(stack, f"crash-{fsync}")
    stack.queue.crash()
    stack.queue.start()
    assert registry_counts(stack)["queued"] == JOBS
    assert_all_persisted(stack, subjects)


def test_without_aof_a_restart_loses_the_queue(start_stack) -> None:
    """The control: the settings above are what keeps the jobs (this is why production needs them)."""
    stack = start_stack(appendonly=False)
    queue_jobs(stack, "lost")
    stack.queue.stop()
    stack.queue.start()
    assert registry_counts(stack)["queued"] == 0


def test_the_worker_refuses_a_redis_that_may_evict_jobs(start_stack) -> None:
    policy = "allkeys-lru"
    stack = start_stack(appendonly=False, redis_args=("--maxmemory-policy", policy))
    with stack.queue.client() as client:
        assert client.info("memory")["maxmemory_policy"] == policy
    refused = stack.flask("worker", "--burst", check=False)
    assert refused.returncode == 1
    assert f"the queue Redis has maxmemory-policy '{policy}'" in refused.stderr
    assert "maxmemory-policy noeviction" in refused.stderr
    assert "Traceback" not in refused.stderr
