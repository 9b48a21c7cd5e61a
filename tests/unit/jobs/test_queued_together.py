"""`queued_together`: the jobs of a block reach the queue at its end, in one transaction.

A sign-in's callback queues its user's persistence and its audit event in one block, so an idle
worker takes both as one batch (tests/reliability/test_batches.py shows it on a real worker). Here:
nothing reaches the queue before the block ends; everything does, in order, however it ends; an
inner block leaves the queuing to the outer one; with the queue down, every held job is kept in
the outbox; and over HTTP, a sign-in puts its two jobs on the queue in one call.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from audit.events import build_event
from audit.jobs import store_audit_event
from extensions import db
from jobs import queues
from jobs.queues import JobCall, enqueue, job_queue, queued_together
from models.outbox import OutboxJob
from tests.unit.helpers import sign_in
from tests.unit.mock_provider import ISSUER, MockProvider


def events(app: Flask, *subjects: str) -> list[dict[str, Any]]:
    """Plain audit events to carry (any job would do)."""
    with app.test_request_context("/"):
        return [build_event("sign_out", "user", issuer=ISSUER, subject=subject) for subject in subjects]


def queued_subjects(app: Flask) -> list[str]:
    """The subjects of the audit events on the queue, in queue order."""
    with app.app_context():
        return [job.args[0]["subject"] for job in job_queue().get_jobs()]


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every call that put jobs on the queue, as the names of its jobs' functions."""
    calls: list[list[str]] = []
    put_all = queues.put_all_on_queue

    def recorded(jobs: list[JobCall]) -> Any:
        calls.append([func.__qualname__ for func, _ in jobs])
        return put_all(jobs)

    monkeypatch.setattr(queues, "put_all_on_queue", recorded)
    return calls


def test_the_block_s_jobs_reach_the_queue_at_its_end_in_one_put(app: Flask, puts: list[list[str]]) -> None:
    first, second = events(app, "alice", "bob")
    with app.test_request_context("/"):
        with queued_together():
            assert enqueue(store_audit_event, first) is None  # held: no job yet
            enqueue(store_audit_event, second)
            assert queued_subjects(app) == []
        assert queued_subjects(app) == ["alice", "bob"]
    assert puts == [["store_audit_event", "store_audit_event"]]


def test_jobs_held_when_the_block_raises_are_still_queued(app: Flask) -> None:
    [event] = events(app, "alice")
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="the view failed"), queued_together():
        enqueue(store_audit_event, event)
        raise RuntimeError("the view failed")
    assert queued_subjects(app) == ["alice"]


def test_an_inner_block_leaves_the_queuing_to_the_outer_one(app: Flask, puts: list[list[str]]) -> None:
    first, second = events(app, "alice", "bob")
    with app.test_request_context("/"), queued_together():
        with queued_together():
            enqueue(store_audit_event, first)
        assert queued_subjects(app) == []
        enqueue(store_audit_event, second)
    assert queued_subjects(app) == ["alice", "bob"]
    assert len(puts) == 1


def test_outside_a_block_each_job_is_queued_at_once(app: Flask, puts: list[list[str]]) -> None:
    [event] = events(app, "alice")
    with app.test_request_context("/"):
        job = enqueue(store_audit_event, event)
        assert job is not None and queued_subjects(app) == ["alice"]
    assert puts == [["store_audit_event"]]


def test_with_the_queue_down_every_held_job_is_kept_in_the_outbox(
    app: Flask, redis_server: fakeredis.FakeServer
) -> None:
    held = events(app, "alice", "bob")
    with app.test_request_context("/"):
        redis_server.connected = False
        try:
            with queued_together():
                for event in held:
                    enqueue(store_audit_event, event)
        finally:
            redis_server.connected = True
    with app.app_context():
        rows = list(db.session.execute(select(OutboxJob).order_by(OutboxJob.id)).scalars())
    assert [(row.func, row.args) for row in rows] == [("audit.jobs:store_audit_event", [event]) for event in held]
    assert queued_subjects(app) == []


def test_a_sign_in_puts_its_persistence_and_audit_event_on_the_queue_in_one_call(
    client: FlaskClient, provider: MockProvider, puts: list[list[str]]
) -> None:
    sign_in(client, provider, "alice", worker=False)
    assert puts == [["persist_user", "store_audit_event"]]
