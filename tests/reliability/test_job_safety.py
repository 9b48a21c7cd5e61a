"""What a worker will run, and what it writes down: only Gatehouse's job functions, no personal data."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from jobs.queues import DEFAULT_QUEUE, SERIALIZER
from tests.reliability.helpers import (
    edit_profile,
    enqueue_records,
    record,
    registry_counts,
    rows_by_subject,
    start_reliability_stack,
)
from tests.support.browserless import sign_in
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# Personal data a job carries; none of it may reach a log line or a failed job's record.
EMAIL, NAME, BIO = "ada.secret@example.test", "Ada Secretname", "a bio nobody else may read"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Redis, SQLite and one worker that gives up on a job after one quick retry."""
    running = start_reliability_stack(tmp_path, settings={"JOB_RETRY_INTERVALS": (0,)})
    try:
        yield running
    finally:
        running.stop()


def test_a_pickled_job_planted_in_the_queue_never_runs(stack: Stack, tmp_path: Path) -> None:
    """Jobs are JSON: a pickle payload written straight into the queue fails to load and runs nothing."""
    marker = tmp_path / "pickle-ran"
    with stack.queue.client() as client:
        Queue(DEFAULT_QUEUE, connection=client).enqueue("os.system", f"touch {marker}")  # RQ's default: pickle
    wait_until(lambda: registry_counts(stack)["failed"] == 1, timeout=30, what="the planted job to fail")
    assert not marker.exists()


def test_a_job_naming_any_other_function_never_runs(stack: Stack, tmp_path: Path) -> None:
    """A well-formed JSON job naming a function outside Gatehouse's jobs is refused, not imported and called."""
    marker = tmp_path / "json-ran"
    with stack.queue.client() as client:
        queue = Queue(DEFAULT_QUEUE, connection=client, serializer=SERIALIZER)
        planted = queue.enqueue("os.system", f"touch {marker}")
        wait_until(lambda: registry_counts(stack)["failed"] == 1, timeout=30, what="the planted job to fail")
        failed = Job.fetch(planted.id, connection=client, serializer=SERIALIZER)
        error = failed.latest_result().exc_string
    assert not marker.exists()
    assert "is not a Gatehouse job function" in error
    # The worker keeps serving real jobs.
    enqueue_records(stack, [record("after-the-planted-job")])
    wait_until(lambda: "after-the-planted-job" in rows_by_subject(stack), timeout=30, what="the real job")


def test_jobs_and_their_failures_carry_no_personal_data(stack: Stack) -> None:
    """A job that succeeds and one that fails leave the user's e-mail, name and bio in no log and no failed job."""
    enqueue_records(stack, [{**record("logged-ok", bio=BIO), "email": EMAIL, "name": NAME}])
    wait_until(lambda: "logged-ok" in rows_by_subject(stack), timeout=30, what="the first job")
    # Make every later insert fail inside the database, with the statement's parameters in the error.
    database = stack.settings["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TRIGGER refuse BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'refused'); END")
    enqueue_records(stack, [{**record("logged-failing", bio=BIO), "email": EMAIL, "name": NAME}])
    wait_until(lambda: registry_counts(stack)["failed"] == 1, timeout=30, what="the failing job to run out of retries")

    with stack.queue.client() as client:
        queue = Queue(DEFAULT_QUEUE, connection=client, serializer=SERIALIZER)
        (job_id,) = FailedJobRegistry(queue=queue).get_job_ids()
        error = Job.fetch(job_id, connection=client, serializer=SERIALIZER).latest_result().exc_string
    assert "refused" in error  # the record says what went wrong
    status = stack.flask("jobs", "status", "--json").stdout
    assert json.loads(status)["counts"]["failed"] == 1
    worker_log = (Path(stack.env["GATEHOUSE_TEST_LOGS"]) / "worker0.log").read_text(errors="replace")
    assert "persist_user failed for user" in worker_log  # the failure is logged, by the user's opaque id
    for where, text in {"worker log": worker_log, "failed job": error, "jobs status": status}.items():
        for secret in (EMAIL, NAME, BIO):
            assert secret not in text, f"{secret!r} in the {where}"


def test_everything_works_against_redis_that_requires_auth(tmp_path: Path) -> None:
    """Sessions, rate limits, the queue and the worker all pass the password from their redis:// URLs."""
    running = start_reliability_stack(
        tmp_path / "auth", separate_queue=True, provider=True, web=1, redis_password="s3cret-redis-password"
    )
    try:
        with running.sessions.client() as client:
            assert client.config_get("requirepass")["requirepass"] == "s3cret-redis-password"
        http = requests.Session()
        assert sign_in(http, running.web_url, "behind-auth", next_path="/profile").status_code == 200
        assert edit_profile(http, running.web_url, display_name="Behind Auth").status_code == 302
        wait_until(
            lambda: rows_by_subject(running).get("behind-auth", [{}])[0].get("display_name") == "Behind Auth",
            timeout=30,
            what="the edit to persist through the password-protected queue",
        )
    finally:
        running.stop()
