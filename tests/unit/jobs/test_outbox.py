"""The job outbox keeps the request id of the request that queued the job, and gives it back at the drain.

Hostile cases: a forged or oversized X-Request-ID never reaches a row; a row written straight into the
database with an unsafe id (oversized, a newline, non-ASCII) is drained without it, never stuck; rows
from before the column existed, and jobs queued outside a request, drain without one.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask import Flask, g
from sqlalchemy import insert, select

from audit.events import build_event
from audit.jobs import store_audit_event
from extensions import db
from jobs.outbox import drain_outbox, outbox_count
from jobs.queues import REQUEST_ID_META, GatehouseJob, enqueue, job_queue, put_on_queue
from logs import current_request_id
from models.audit import AuditEvent
from models.outbox import OutboxJob
from tests.unit.mock_provider import ISSUER

AUDIT_JOB = "audit.jobs:store_audit_event"


def an_event(app: Flask) -> dict[str, Any]:
    """A plain audit event to carry (any job would do)."""
    with app.test_request_context("/"):
        return build_event("sign_out", "user", issuer=ISSUER, subject="alice")


def enqueue_with_the_queue_down(app: Flask, redis_server: fakeredis.FakeServer, headers: dict[str, str]) -> str:
    """Queue a job in a request sending `headers` while the queue is down; returns the request's id."""
    event = an_event(app)
    with app.test_request_context("/", headers=headers):
        app.preprocess_request()  # the request id is chosen here (logs.py)
        request_id: str = g.request_id
        redis_server.connected = False
        try:
            assert enqueue(store_audit_event, event) is None, "the queue refused it: it went to the outbox"
        finally:
            redis_server.connected = True
    return request_id


def outbox_rows(app: Flask) -> list[OutboxJob]:
    with app.app_context():
        return list(db.session.execute(select(OutboxJob)).scalars())


def drained_jobs(app: Flask) -> list[GatehouseJob]:
    """Drain the outbox as a worker does; the jobs now on the queue."""
    with app.app_context():
        drain_outbox(put_on_queue)
        assert outbox_count() == 0
        jobs: list[GatehouseJob] = job_queue().get_jobs()
        return jobs


def write_row(app: Flask, **fields: Any) -> None:
    """An outbox row written straight into the database (an old row, or a forged one)."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            insert(OutboxJob).values(func=AUDIT_JOB, args=[an_event(app)], error="ConnectionError: down", **fields)
        )


def test_a_job_kept_in_the_outbox_is_drained_with_its_request_s_id(
    app: Flask, redis_server: fakeredis.FakeServer
) -> None:
    request_id = enqueue_with_the_queue_down(app, redis_server, {"X-Request-ID": "proxy-7f3a.b_c-1"})
    assert request_id == "proxy-7f3a.b_c-1"
    [row] = outbox_rows(app)
    assert row.request_id == request_id
    assert request_id not in str(row.args), "beside the job, never one of its arguments"
    [job] = drained_jobs(app)
    assert job.meta[REQUEST_ID_META] == request_id
    assert job.request_id == request_id  # what the worker runs the job inside (logs.request_id_context)
    assert job.args == row.args


@pytest.mark.parametrize(
    "header",
    ["forged;admin=1", "x" * 65, "caf\u00e9", "\x1b[31mred"],
    ids=["semicolon", "oversized", "non-ASCII", "terminal escape"],
)
def test_a_forged_request_id_header_never_reaches_a_row(
    app: Flask, redis_server: fakeredis.FakeServer, header: str
) -> None:
    request_id = enqueue_with_the_queue_down(app, redis_server, {"X-Request-ID": header})
    assert request_id != header  # replaced by a random id at the request's start
    [row] = outbox_rows(app)
    assert row.request_id == request_id
    assert len(row.request_id) == 32


@pytest.mark.parametrize(
    "forged",
    ["x" * 65, "x" * 10_000, "two\nlines", "caf\u00e9", "", "a b"],
    ids=["65 characters", "10,000 characters", "newline", "non-ASCII", "empty", "space"],
)
def test_a_row_with_an_unsafe_request_id_drains_without_it(app: Flask, forged: str) -> None:
    write_row(app, request_id=forged)  # SQLite keeps what it is given, whatever the column's length
    [job] = drained_jobs(app)
    assert REQUEST_ID_META not in job.meta
    assert job.request_id is None


def test_an_old_row_without_a_request_id_still_drains_and_runs(app: Flask) -> None:
    write_row(app)  # as rows written before the column existed read back: NULL
    [job] = drained_jobs(app)
    assert REQUEST_ID_META not in job.meta
    with app.app_context():
        job.perform()
        assert outbox_count() == 0
    with app.app_context():
        assert [event.kind for event in db.session.execute(select(AuditEvent)).scalars()] == ["sign_out"]


def test_a_job_queued_outside_a_request_is_kept_and_drained_without_an_id(
    app: Flask, redis_server: fakeredis.FakeServer
) -> None:
    event = an_event(app)
    with app.app_context():
        redis_server.connected = False
        try:
            enqueue(store_audit_event, event)
        finally:
            redis_server.connected = True
    [row] = outbox_rows(app)
    assert row.request_id is None
    [job] = drained_jobs(app)
    assert REQUEST_ID_META not in job.meta


def test_each_drained_job_gets_its_own_request_s_id_and_the_drain_keeps_none(
    app: Flask, redis_server: fakeredis.FakeServer
) -> None:
    first = enqueue_with_the_queue_down(app, redis_server, {"X-Request-ID": "request-one"})
    write_row(app)  # one old row between them
    second = enqueue_with_the_queue_down(app, redis_server, {})
    jobs = drained_jobs(app)
    assert [job.request_id for job in jobs] == [first, None, second]
    assert current_request_id() is None, "the drain leaves no request id behind in its own context"
