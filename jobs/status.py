"""How many jobs are in each state: what `jobs status` prints and the `gatehouse_jobs` gauge shows."""

from __future__ import annotations

from collections.abc import Callable

from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy.exc import SQLAlchemyError

from jobs.outbox import outbox_count
from jobs.queues import job_queue, waiting_count


def job_counts() -> dict[str, int | None]:
    """Jobs per state; None where the store holding that state cannot be reached."""
    queue = job_queue()
    registries: dict[str, Callable[[], int]] = {
        "queued": lambda: waiting_count(queue),
        # cleanup=False: looking must not change anything (cleanup retries abandoned jobs).
        "started": lambda: StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
        # RQ leaves ScheduledJobRegistry.__init__ unannotated.
        "scheduled": lambda: ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False),  # type: ignore[no-untyped-call]
        "failed": lambda: FailedJobRegistry(queue=queue).get_job_count(cleanup=False),
    }
    counts: dict[str, int | None] = {}
    for state, count in registries.items():
        try:
            counts[state] = count()
        except RedisError:
            counts[state] = None
    try:
        counts["outbox"] = outbox_count()
    except SQLAlchemyError:
        counts["outbox"] = None
    return counts
