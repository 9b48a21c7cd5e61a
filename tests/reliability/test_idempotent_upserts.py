"""persist_user on SQLite and PostgreSQL: duplicate jobs running at once, and late old versions, are harmless."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from rq.job import Job, JobStatus

from jobs.queues import job_queue
from tests.reliability.helpers import (
    enqueue_records,
    job_status,
    record,
    registry_counts,
    rows_by_subject,
    start_reliability_stack,
    users_table_locked,
)
from tests.support.faults import sqlite_locked
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two workers on SQLite or PostgreSQL, shared by this module's tests (each uses its own subject)."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_cluster").create_database(
            f"upserts_{uuid.uuid4().hex[:8]}", migrated=True
        )
    # No maintenance run while a test holds SQLite's lock: its outbox read would wait out the busy timeout.
    quiet = {"WORKER_MAINTENANCE_INTERVAL": 600}
    running = start_reliability_stack(
        tmp_path_factory.mktemp(request.param), database_url=url, workers=2, settings=quiet
    )
    try:
        yield running
    finally:
        running.stop()


def database_locked(stack: Stack) -> AbstractContextManager[None]:
    """Block every upsert at the database until the block exits."""
    url = stack.settings["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        return sqlite_locked(Path(url.removeprefix("sqlite:///")))
    return users_table_locked(url)


def retries_used(stack: Stack, job_id: str) -> int:
    """How many retries a job consumed (0: its first run succeeded)."""
    with stack.context():
        job = Job.fetch(job_id, connection=job_queue().connection, serializer=job_queue().serializer)
        return len(job.retry_intervals or []) - int(job.retries_left or 0)


def run_together(stack: Stack, records: list[dict]) -> list[str]:
    """Start one job per record on separate workers, hold them at the database, then let them race."""
    with database_locked(stack):
        job_ids = enqueue_records(stack, records)
        wait_until(
            lambda: registry_counts(stack)["started"] == len(records),
            timeout=10,
            interval=0.05,
            what="both workers to be inside their job",
        )
    for job_id in job_ids:
        wait_until(lambda job_id=job_id: job_status(stack, job_id) == JobStatus.FINISHED, timeout=20, what="the job")
    return job_ids


def test_the_same_job_twice_at_once_leaves_one_row_and_no_error(stack: Stack) -> None:
    job_ids = run_together(stack, [record("twin", profile_version=4), record("twin", profile_version=4)])
    rows = rows_by_subject(stack)["twin"]
    assert len(rows) == 1
    assert rows[0]["display_name"] == "twin v4"
    assert [retries_used(stack, job_id) for job_id in job_ids] == [0, 0]
    assert registry_counts(stack)["failed"] == 0


def test_an_older_version_racing_a_newer_one_never_wins(stack: Stack) -> None:
    # Older first in the queue: the order the jobs commit in is up to the race.
    run_together(stack, [record("racer", profile_version=3), record("racer", profile_version=9)])
    [row] = rows_by_subject(stack)["racer"]
    assert (row["profile_version"], row["display_name"]) == (9, "racer v9")


def test_an_older_version_arriving_late_changes_nothing(stack: Stack) -> None:
    [newer] = enqueue_records(stack, [record("late", profile_version=20, identity_version=20, bio="new")])
    wait_until(lambda: job_status(stack, newer) == JobStatus.FINISHED, timeout=20, what="the newer job")
    [older] = enqueue_records(stack, [record("late", profile_version=10, identity_version=10, bio="old")])
    wait_until(lambda: job_status(stack, older) == JobStatus.FINISHED, timeout=20, what="the older job")
    [row] = rows_by_subject(stack)["late"]
    assert (row["profile_version"], row["bio"], row["display_name"]) == (20, "new", "late v20")


def test_a_newer_identity_updates_claims_without_touching_a_newer_profile(stack: Stack) -> None:
    first = record("split", profile_version=50, identity_version=1, bio="kept")
    later_sign_in = {**record("split", profile_version=5, identity_version=2, bio="stale"), "email": "new@example.test"}
    run_together(stack, [first, later_sign_in])
    [row] = rows_by_subject(stack)["split"]
    assert (row["email"], row["profile_version"], row["bio"]) == ("new@example.test", 50, "kept")
