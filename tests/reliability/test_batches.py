"""Batched persistence (jobs/batch.py): a batch killed, poisoned, out of order or cut off from its database.

Each test queues its jobs before it starts the worker, so the worker's first dequeue finds
them all ready and takes them as one batch (each test queues fewer than WORKER_BATCH_SIZE, 500).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from rq.job import JobStatus
from rq.queue import Queue

from accounts.persistence import persist_user
from audit import events as audit
from audit.events import build_event
from audit.jobs import store_audit_event
from jobs.queues import DEFAULT_QUEUE, SERIALIZER, enqueue, put_on_queue, queued_together
from tests.reliability.helpers import (
    ISSUER,
    StartStack,
    blocked_upserts,
    enqueue_records,
    job_status,
    record,
    registry_counts,
    rows_by_subject,
    users_table_locked,
)
from tests.support.faults import is_running, kill, kill_tree, work_horse
from tests.support.polling import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

BATCH = 30
IDLE = {"queued": 0, "started": 0, "scheduled": 0, "failed": 0}
# About 30 s of retries: longer than the database outage below takes.
RETRY_INTERVALS = (0, 1, 2, 4, 8, 8, 8)
# JSON log lines: the worker then logs every job's end (text logs keep RQ's lines only).
JSON_LOGS = {"LOG_FORMAT": "json"}


@pytest.fixture
def pg_stack(start_test_stack: StartStack) -> Stack:
    """PostgreSQL and Redis; no worker yet (the test starts it once its jobs are queued)."""
    return start_test_stack("postgresql", workers=0, settings={"JOB_RETRY_INTERVALS": RETRY_INTERVALS, **JSON_LOGS})


@pytest.fixture(params=["sqlite", "postgresql"])
def any_stack(request: pytest.FixtureRequest, start_test_stack: StartStack) -> Stack:
    """SQLite or PostgreSQL, and Redis; no worker yet."""
    return start_test_stack(request.param, workers=0, settings=JSON_LOGS)


def worker_log(stack: Stack) -> str:
    """The whole log of the test's worker."""
    return (Path(stack.env["GATEHOUSE_TEST_LOGS"]) / "batch-worker.log").read_text(errors="replace")


def subjects(prefix: str, count: int = BATCH) -> list[str]:
    """Distinct users for one test."""
    return [f"{prefix}-{index:03d}" for index in range(count)]


def wait_all_finished(stack: Stack, job_ids: list[str], timeout: float = 40) -> None:
    """Every job finished (the log shows why not)."""
    wait_until(
        lambda: all(job_status(stack, job_id) == JobStatus.FINISHED for job_id in job_ids),
        timeout=timeout,
        interval=0.2,
        what=f"every job to finish\n{stack.log('batch-worker')}",
    )


def assert_one_row_each(stack: Stack, names: list[str], profile_version: int = 1) -> None:
    """Exactly one row per user, with the version its job carried."""
    rows = rows_by_subject(stack)
    for name in names:
        assert [row["profile_version"] for row in rows.get(name, [])] == [profile_version], name


def start_batch_blocked(stack: Stack, names: list[str]) -> list[str]:
    """Queue the jobs, start a worker, and wait until its batch is stuck inside its INSERT (table locked)."""
    job_ids = enqueue_records(stack, [record(name) for name in names])
    stack.start_worker("batch-worker")
    url = stack.settings["DATABASE_URL"]
    wait_until(lambda: blocked_upserts(url) == 1, timeout=30, what="the batch to block on the users table")
    # One batch holds every job: all started, in one work horse.
    assert registry_counts(stack)["started"] == len(names)
    return job_ids


def test_a_work_horse_killed_mid_batch_loses_nothing(pg_stack: Stack) -> None:
    names = subjects("horse-batch")
    with users_table_locked(pg_stack.settings["DATABASE_URL"]):
        job_ids = start_batch_blocked(pg_stack, names)
        worker = pg_stack.processes["batch-worker"]
        horse = work_horse(worker.pid)
        assert horse is not None
        kill(horse)
        wait_until(lambda: not is_running(horse), timeout=5, what="the work horse to die")
    wait_all_finished(pg_stack, job_ids)
    assert_one_row_each(pg_stack, names)
    assert registry_counts(pg_stack) == IDLE
    assert worker.poll() is None  # the worker itself carries on


def test_a_whole_worker_killed_mid_batch_loses_nothing(pg_stack: Stack) -> None:
    names = subjects("worker-batch")
    with users_table_locked(pg_stack.settings["DATABASE_URL"]):
        job_ids = start_batch_blocked(pg_stack, names)
        killed = kill_tree(pg_stack.processes["batch-worker"].pid)
        pg_stack.forget("batch-worker")
        assert len(killed) >= 3  # the worker, its batch's work horse and its scheduler
    assert registry_counts(pg_stack)["started"] == BATCH  # nobody has noticed yet
    pg_stack.start_worker("batch-worker")  # the supervisor's restart: its maintenance finds them abandoned
    wait_all_finished(pg_stack, job_ids)
    assert_one_row_each(pg_stack, names)
    assert registry_counts(pg_stack) == IDLE


@pytest.fixture
def sqlite_stack(start_test_stack: StartStack) -> Stack:
    """SQLite and Redis; no worker yet."""
    return start_test_stack("sqlite", workers=0)


def test_jobs_taken_but_never_started_by_a_dead_worker_are_retried(sqlite_stack: Stack) -> None:
    """A worker that dies between moving a batch off the queue and marking it started leaves the jobs in
    RQ's intermediate queue, whose cleanup retries them (about a minute later: RQ's fixed wait)."""
    any_stack = sqlite_stack
    names = subjects("never-started", 5)
    job_ids = enqueue_records(any_stack, [record(name) for name in names])
    with any_stack.queue.client() as client:
        queue = Queue(DEFAULT_QUEUE, connection=client, serializer=SERIALIZER)
        for _ in job_ids:  # exactly what a batch's first step does, with no one left to go on
            client.lmove(queue.key, queue.intermediate_queue_key)
        assert client.llen(queue.intermediate_queue_key) == len(job_ids)
        assert queue.count == 0
    # Stranded, yet not invisible: operators see them as queued.
    status = json.loads(any_stack.flask("jobs", "status", "--json").stdout)
    assert status["counts"]["queued"] == len(job_ids)
    any_stack.start_worker("batch-worker")
    wait_all_finished(any_stack, job_ids, timeout=100)
    assert_one_row_each(any_stack, names)
    with any_stack.queue.client() as client:
        assert client.llen(queue.intermediate_queue_key) == 0


def test_one_poisoned_record_fails_alone_and_visibly(any_stack: Stack) -> None:
    names = subjects("poison")
    records = [record(name) for name in names]
    if any_stack.settings["DATABASE_URL"].startswith("sqlite"):
        records[7]["identity_version"] = "not a number"  # refused before the database
    else:
        records[7]["identity_version"] = 2**70  # refused by PostgreSQL (bigint out of range), inside the transaction
    job_ids = enqueue_records(any_stack, records)
    any_stack.start_worker("batch-worker")
    good = [job_id for index, job_id in enumerate(job_ids) if index != 7]
    wait_all_finished(any_stack, good)
    wait_until(lambda: job_status(any_stack, job_ids[7]) == JobStatus.FAILED, timeout=20, what="the poisoned job")
    assert_one_row_each(any_stack, [name for index, name in enumerate(names) if index != 7])
    assert names[7] not in rows_by_subject(any_stack)
    # Failed for good at once (no retries), and shown with its reason.
    assert registry_counts(any_stack) == {**IDLE, "failed": 1}
    status = json.loads(any_stack.flask("jobs", "status", "--json").stdout)
    assert status["counts"]["failed"] == 1
    assert status["failures"][0]["id"] == job_ids[7]
    assert "PermanentJobFailure" in status["failures"][0]["error"]
    assert "running them one by one" in worker_log(any_stack)


def versions(subject: str, profile: int, identity: int, **changes: Any) -> dict[str, Any]:
    """A record of `subject` whose fields name the versions they came with."""
    return {
        **record(subject, profile_version=profile, identity_version=identity, bio=f"bio {profile}"),
        "email": f"{subject}.{identity}@example.test",
        **changes,
    }


def test_records_of_one_user_out_of_order_in_a_batch_end_at_the_newest(any_stack: Stack) -> None:
    others = subjects("bystander", 10)
    flip = [
        versions("flip", profile=5, identity=40),
        versions("flip", profile=9, identity=10),
        versions("flip", profile=3, identity=70),
        versions("flip", profile=7, identity=20),
        # A newer edit carrying only the field the user changed (made before their profile loaded).
        {**versions("flip", profile=12, identity=1, display_name="not changed"), "bio": "bio 12", "only": ["bio"]},
    ]
    records = [record(others[0]), *flip[:2], *[record(name) for name in others[1:]], *flip[2:]]
    job_ids = enqueue_records(any_stack, records)
    any_stack.start_worker("batch-worker")
    wait_all_finished(any_stack, job_ids)
    assert f"batch of {len(records)} jobs OK" in worker_log(any_stack)  # one batch ran them all
    # Each job of the batch still logs that it finished, as a single job does.
    assert all(f"persist_user finished (job {job_id}, in a batch)" in worker_log(any_stack) for job_id in job_ids)
    [row] = rows_by_subject(any_stack)["flip"]
    assert (row["profile_version"], row["display_name"], row["bio"]) == (12, "flip v9", "bio 12")
    assert row["email"] == "flip.70@example.test"  # the newest identity, from the third record
    assert row["issuer"] == ISSUER
    assert_one_row_each(any_stack, others)


def test_a_database_outage_during_a_batch_retries_every_job(pg_stack: Stack, postgres_cluster: PostgresCluster) -> None:
    names = subjects("outage-batch")
    job_ids = enqueue_records(pg_stack, [record(name) for name in names])
    postgres_cluster.stop("fast")
    try:
        pg_stack.start_worker("batch-worker")
        wait_until(
            lambda: registry_counts(pg_stack)["scheduled"] == BATCH,
            timeout=30,
            what=f"every job of the batch to wait for a retry\n{pg_stack.log('batch-worker')}",
        )
        assert registry_counts(pg_stack)["failed"] == 0
        assert "each is retried" in worker_log(pg_stack)  # not one by one against a dead database
    finally:
        postgres_cluster.start()
    wait_all_finished(pg_stack, job_ids)
    assert_one_row_each(pg_stack, names)
    wait_until(lambda: registry_counts(pg_stack) == IDLE, timeout=20, what="every job to end")


def test_a_login_storm_s_audit_events_ride_in_the_same_batches(any_stack: Stack) -> None:
    """Each sign-in queues a persistence job and an audit event: both kinds go into one batch, and a
    poisoned event fails alone (visible), while every row and every other event is stored once."""
    names = subjects("storm", 20)
    with any_stack.context() as app:
        with app.test_request_context("/"):
            events = [build_event("sign_in", "success", issuer=ISSUER, subject=name) for name in names]
        poisoned = {**events[7], "event_id": ""}
        job_ids = []
        for name, event in zip(names, [*events[:7], poisoned, *events[8:]], strict=True):
            job_ids.append(put_on_queue(persist_user, record(name)).id)
            job_ids.append(put_on_queue(store_audit_event, event).id)
    any_stack.start_worker("batch-worker")
    wait_until(
        lambda: all(job_status(any_stack, job_id) in (JobStatus.FINISHED, JobStatus.FAILED) for job_id in job_ids),
        timeout=40,
        interval=0.2,
        what=f"every job to end\n{any_stack.log('batch-worker')}",
    )
    statuses = [job_status(any_stack, job_id) for job_id in job_ids]
    assert statuses.count(JobStatus.FAILED) == 1
    assert statuses[2 * 7 + 1] == JobStatus.FAILED  # the poisoned event's job, and nothing else
    assert sorted(rows_by_subject(any_stack)) == sorted(names)
    stored = [json.loads(line) for line in any_stack.flask("audit", "list", "--json").stdout.splitlines()]
    assert sorted(event["subject"] for event in stored) == sorted(names[:7] + names[8:])
    assert "batch of 40 jobs" in worker_log(any_stack)  # one batch held both kinds


def test_a_sign_in_s_two_jobs_queued_together_reach_an_idle_worker_as_one_batch(start_test_stack: StartStack) -> None:
    """The callback queues its user's persistence and its audit event in one `queued_together` block: a
    worker waiting idle wakes for both at once and runs them as one batch, not as two batches of one."""
    stack = start_test_stack("sqlite", workers=0, settings=JSON_LOGS)
    stack.start_worker("batch-worker")
    stack.wait_for_idle_workers(1)
    names = subjects("together", 5)
    for done, name in enumerate(names, start=1):
        with stack.context() as app, app.test_request_context("/"), queued_together():
            enqueue(persist_user, record(name))
            # The callback's work between the two (its redirect, its metrics): time enough for a worker
            # woken by the first job alone to take it alone.
            time.sleep(0.05)
            audit.record("sign_in", "success", issuer=ISSUER, subject=name)
        wait_until(
            lambda: len(rows_by_subject(stack)) == done and registry_counts(stack) == IDLE,  # noqa: B023
            timeout=20,
            what=f"sign-in {name} to be stored\n{stack.log('batch-worker')}",
        )
    log = worker_log(stack)
    assert log.count("batch of 2 jobs OK") == len(names), log
    assert "batch of 1 jobs" not in log  # neither job woke the worker alone
    stored = [json.loads(line) for line in stack.flask("audit", "list", "--json").stdout.splitlines()]
    assert sorted(event["subject"] for event in stored) == names
