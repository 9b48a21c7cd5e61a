"""Helpers the reliability tests share: the suite's stack parameters, job records, PostgreSQL locks and outage
probes, job states."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from accounts.persistence import persist_user
from jobs.queues import job_queue, put_on_queue, waiting_count
from tests.support.browserless import csrf_token
from tests.support.stack import FAST_WORKER, Stack, start_stack

ISSUER = "https://issuer.reliability.test"
# What the start_test_stack fixture (conftest.py) gives a test:
# start_test_stack("sqlite" or "postgresql", **start_reliability_stack's keywords) -> Stack.
StartStack = Callable[..., Stack]


def start_reliability_stack(
    workdir: Path,
    *,
    database_url: str | None = None,
    separate_queue: bool = False,
    queue_appendonly: bool = False,
    queue_redis_args: Sequence[str] = (),
    provider: bool = False,
    web: int = 0,
    workers: int = 1,
    settings: Mapping[str, Any] | None = None,
    redis_password: str | None = None,
) -> Stack:
    """The suite's deployment: no provider or web process unless asked, fast worker timings, workers idle on return."""
    return start_stack(
        workdir,
        web=web,
        workers=workers,
        provider="mock" if provider else None,
        database_url=database_url,
        separate_queue=separate_queue,
        queue_appendonly=queue_appendonly,
        queue_redis_args=queue_redis_args,
        redis_password=redis_password,
        settings={**FAST_WORKER, **(settings or {})},
        wait_for_workers=True,
    )


def record(subject: str, *, profile_version: int = 1, identity_version: int = 1, **profile: Any) -> dict[str, Any]:
    """The plain data a persistence job carries (what users/persistence.user_record builds)."""
    return {
        "issuer": ISSUER,
        "subject": subject,
        "email": f"{subject}@example.test",
        "name": subject.title(),
        "picture": None,
        "identity_version": identity_version,
        "display_name": profile.get("display_name", f"{subject} v{profile_version}"),
        "locale": profile.get("locale", "en"),
        "timezone": profile.get("timezone", "UTC"),
        "website": profile.get("website"),
        "bio": profile.get("bio"),
        "profile_version": profile_version,
    }


PROFILE_DEFAULTS = {"locale": "en", "timezone": "UTC", "website": "", "bio": ""}


def edit_profile(http: requests.Session, base_url: str, **fields: str) -> requests.Response:
    """Submit the profile form as a browser would (the redirect is not followed)."""
    page = http.get(f"{base_url}/profile", timeout=10)
    assert page.status_code == 200, page.text
    data = {**PROFILE_DEFAULTS, **fields, "csrf_token": csrf_token(page.text)}
    return http.post(f"{base_url}/profile", data=data, allow_redirects=False, timeout=10)


def enqueue_records(stack: Stack, records: list[dict[str, Any]]) -> list[str]:
    """Put persistence jobs on the real queue from the test process; returns their ids."""
    with stack.context():
        return [put_on_queue(persist_user, data).id for data in records]


def rows_by_subject(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Persisted users grouped by subject (a list, so duplicates would show)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in stack.users():
        grouped.setdefault(row["subject"], []).append(row)
    return grouped


def job_status(stack: Stack, job_id: str) -> JobStatus | None:
    """The state of one job on the real queue."""
    with stack.context():
        job = Job.fetch(job_id, connection=job_queue().connection, serializer=job_queue().serializer)
        return job.get_status()


def registry_counts(stack: Stack) -> dict[str, int]:
    """Queued (as `jobs status` counts them), started, scheduled and failed job counts, read without side effects."""
    with stack.context():
        queue = job_queue()
        return {
            "queued": waiting_count(queue),
            "started": StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
            "scheduled": ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False),
            "failed": FailedJobRegistry(queue=queue).get_job_count(cleanup=False),
        }


def psycopg_url(database_url: str) -> str:
    """A libpq URL for psycopg from the DATABASE_URL the app gets."""
    return database_url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def users_table_locked(database_url: str) -> Iterator[None]:
    """Hold a SHARE lock on `users` so every upsert blocks mid-job until the block exits."""
    with psycopg.connect(psycopg_url(database_url)) as connection:
        connection.execute("LOCK TABLE users IN SHARE MODE")
        try:
            yield
        finally:
            connection.rollback()


def blocked_upserts(database_url: str) -> int:
    """How many sessions wait on a lock inside INSERT INTO users (jobs stuck mid-job)."""
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO users%'"
        ).fetchone()
    return int(row[0]) if row else 0
