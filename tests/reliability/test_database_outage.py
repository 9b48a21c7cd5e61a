"""PostgreSQL down for 30 s while 100 jobs run: they retry with backoff and every row exists afterwards.

During the outage sign-in and profile edits keep working (the web never waits on
the database), /readyz names the database, and no job runs out of retries. After
it, no connection left over from before the outage fails anything (pool_pre_ping,
and work horses never reuse the parent's connections).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.reliability.helpers import (
    edit_profile,
    enqueue_records,
    record,
    registry_counts,
    rows_by_subject,
    start_reliability_stack,
)
from tests.support.browserless import sign_in
from tests.support.faults import Stopwatch
from tests.support.polling import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 30
JOBS = 100
# About 55 s of retries in all: comfortably longer than the outage.
RETRY_INTERVALS = (0, 1, 2, 4, 8, 8, 8, 8, 8, 8)
# What a pooled connection that died with the server looks like when reused.
STALE_CONNECTION_ERRORS = ("server closed the connection unexpectedly", "terminating connection", "SSL SYSCALL")


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, postgres_cluster: PostgresCluster) -> Iterator[Stack]:
    """PostgreSQL, Redis, the provider, one web process and two workers with short retry intervals."""
    running = start_reliability_stack(
        tmp_path,
        database_url=postgres_url,
        provider=True,
        web=1,
        workers=2,
        settings={"JOB_RETRY_INTERVALS": RETRY_INTERVALS},
    )
    try:
        yield running
    finally:
        running.stop()
        if not postgres_running(postgres_cluster):
            postgres_cluster.start()  # the cluster is shared with the rest of the suite


def postgres_running(cluster: PostgresCluster) -> bool:
    """True while the cluster's postmaster is up."""
    return (Path(cluster.data_dir) / "postmaster.pid").exists()


def readiness(stack: Stack) -> tuple[int, str]:
    """/readyz: status code and what it says about the database."""
    response = requests.get(f"{stack.web_url}/readyz", timeout=10)
    return response.status_code, response.json()["checks"]["database"]


def worker_logs(stack: Stack) -> dict[str, str]:
    """Both workers' logs (their ends)."""
    return {name: stack.log(name) for name in ("worker0", "worker1")}


def log_files(stack: Stack) -> dict[str, Path]:
    """Both workers' log files."""
    return {name: Path(stack.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log" for name in ("worker0", "worker1")}


def test_jobs_survive_a_30_second_database_outage(
    stack: Stack, postgres_cluster: PostgresCluster, timings: dict[str, float]
) -> None:
    assert readiness(stack) == (200, "ok")  # the web process now holds a pooled connection
    subjects = [f"outage-{index:03d}" for index in range(JOBS)]
    enqueue_records(stack, [record(subject) for subject in subjects[: JOBS // 2]])

    postgres_cluster.stop("fast")
    outage = Stopwatch()
    enqueue_records(stack, [record(subject) for subject in subjects[JOBS // 2 :]])
    with requests.Session() as http:
        # The normal path of sign-in and of a profile edit never touches the database.
        assert sign_in(http, stack.web_url, "outage-web", next_path="/profile").status_code == 200
        assert edit_profile(http, stack.web_url, display_name="Edited During Outage").status_code == 302
    assert readiness(stack) == (503, "down")

    retrying_seen = False
    while outage.elapsed() < OUTAGE_SECONDS:
        counts = registry_counts(stack)
        assert counts["failed"] == 0, worker_logs(stack)  # nothing runs out of retries
        retrying_seen = retrying_seen or counts["scheduled"] > 0
        time.sleep(0.5)
    assert retrying_seen  # jobs failed and were scheduled for a retry with backoff

    log_marks = {name: path.stat().st_size for name, path in log_files(stack).items()}
    postgres_cluster.start()
    back = Stopwatch()
    assert readiness(stack) == (200, "ok")  # first request after the outage: the stale connection is replaced

    def all_persisted() -> bool:
        rows = rows_by_subject(stack)
        return all(subject in rows for subject in [*subjects, "outage-web"])

    wait_until(all_persisted, timeout=60, interval=0.5, what=f"every row\n{worker_logs(stack)}")
    timings[
        f"database back after {OUTAGE_SECONDS} s: all {JOBS} queued jobs persisted after (test retry intervals)"
    ] = back.elapsed()
    rows = rows_by_subject(stack)
    assert all(len(rows[subject]) == 1 for subject in subjects)
    assert len(rows["outage-web"]) == 1
    wait_until(
        lambda: rows_by_subject(stack)["outage-web"][0]["display_name"] == "Edited During Outage",
        timeout=30,
        what="the profile edit made during the outage",
    )
    assert registry_counts(stack)["failed"] == 0

    # After the outage nothing trips over a connection that died with the server.
    late = [f"after-{index}" for index in range(10)]
    enqueue_records(stack, [record(subject) for subject in late])
    wait_until(lambda: all(subject in rows_by_subject(stack) for subject in late), timeout=30, what="later jobs")
    for name, path in log_files(stack).items():
        after_restart = path.read_bytes()[log_marks[name] :].decode(errors="replace")
        assert not [error for error in STALE_CONNECTION_ERRORS if error in after_restart], after_restart[-3000:]
    idle = {"queued": 0, "started": 0, "scheduled": 0, "failed": 0}
    # A job's row is committed just before the job ends: wait for the last one to end.
    wait_until(lambda: registry_counts(stack) == idle, timeout=30, what="every job to end")
