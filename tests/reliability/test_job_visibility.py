"""`flask --app app jobs status` and `requeue-failed`: see every state, keep errors, retry failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.helpers import (
    blocked_upserts,
    enqueue_records,
    record,
    registry_counts,
    rows_by_subject,
    start_reliability_stack,
    users_table_locked,
)
from tests.support.polling import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

FAILING = 25


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, postgres_cluster: PostgresCluster) -> Iterator[Stack]:
    """PostgreSQL, Redis and one worker that gives up on a job after one quick retry."""
    running = start_reliability_stack(tmp_path, database_url=postgres_url, settings={"JOB_RETRY_INTERVALS": (0,)})
    try:
        yield running
    finally:
        running.stop()
        if not (Path(postgres_cluster.data_dir) / "postmaster.pid").exists():
            postgres_cluster.start()  # the cluster is shared with the rest of the suite


def status(stack: Stack) -> dict:
    """`jobs status --json`."""
    return json.loads(stack.flask("jobs", "status", "--json").stdout)


def test_status_shows_running_jobs(stack: Stack, postgres_url: str) -> None:
    with users_table_locked(postgres_url):
        enqueue_records(stack, [record("busy")])
        wait_until(lambda: blocked_upserts(postgres_url) == 1, timeout=20, what="the job to start")
        text = stack.flask("jobs", "status").stdout
        assert text.splitlines()[1].split()[:2] == ["started", "1"]
        assert status(stack)["counts"] == {"queued": 0, "started": 1, "scheduled": 0, "failed": 0, "outbox": 0}
    wait_until(lambda: "busy" in rows_by_subject(stack), timeout=20, what="the job to finish")


def test_failed_jobs_keep_their_error_and_requeue_failed_runs_them_again(
    stack: Stack, postgres_cluster: PostgresCluster
) -> None:
    subjects = [f"failing-{index:02d}" for index in range(FAILING)]
    postgres_cluster.stop("fast")
    try:
        enqueue_records(stack, [record(subject) for subject in subjects])
        wait_until(
            lambda: registry_counts(stack)["failed"] == FAILING,
            timeout=60,
            what=f"every job to run out of retries\n{stack.log('worker0')}",
        )
    finally:
        postgres_cluster.start()

    shown = status(stack)
    assert shown["counts"] == {"queued": 0, "started": 0, "scheduled": 0, "failed": FAILING, "outbox": 0}
    assert len(shown["failures"]) == 5
    for failure in shown["failures"]:
        assert failure["function"] == "accounts.persistence.persist_user"
        assert "OperationalError" in failure["error"]
        assert "Connection refused" in failure["error"] or "connection failed" in failure["error"]
    text = stack.flask("jobs", "status").stdout
    assert text.splitlines()[3].split()[:2] == ["failed", str(FAILING)]
    assert "accounts.persistence.persist_user" in text
    assert "OperationalError" in text

    requeued = stack.flask("jobs", "requeue-failed")
    assert "Requeueing failed jobs" in requeued.stdout  # the progress bar's label
    assert f"requeued {FAILING} of {FAILING} failed job(s)" in requeued.stdout
    wait_until(
        lambda: all(subject in rows_by_subject(stack) for subject in subjects),
        timeout=60,
        what="every requeued job to succeed",
    )
    idle = {"queued": 0, "started": 0, "scheduled": 0, "failed": 0, "outbox": 0}
    # A job's row is committed just before the job ends: wait for the last one to end.
    wait_until(lambda: status(stack)["counts"] == idle, timeout=30, what="every job to end")
