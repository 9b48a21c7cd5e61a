"""The job registry: the app runs only its own job functions, under their current and former names.

Job bodies moved in 2026-12 (jobs.users -> accounts.persistence, jobs.accounts -> accounts.deletion,
jobs.audit -> audit.jobs). RQ and the outbox store a job's function by its dotted path, so a job
queued, scheduled, failed or kept in the outbox before the move names the old path: each of those
still runs the function it meant, and every other name is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from accounts.deletion import delete_user_row
from accounts.persistence import persist_user, persist_user_status
from audit.events import build_event
from audit.jobs import store_audit_event
from extensions import db
from jobs.outbox import drain_outbox, resolve_job
from jobs.queues import GatehouseJob, job_queue, put_on_queue
from jobs.registry import JobRegistry, JobSpec, job_registry
from models.audit import AuditEvent
from models.deleted_user import DeletedUser
from models.outbox import OutboxJob
from models.user import User
from tests.unit.helpers import job_record
from tests.unit.mock_provider import ISSUER

FORMER_NAMES: dict[str, Callable[..., Any]] = {
    "jobs.users.persist_user": persist_user,
    "jobs.users.persist_user_status": persist_user_status,
    "jobs.accounts.delete_user_row": delete_user_row,
    "jobs.audit.store_audit_event": store_audit_event,
}


@pytest.mark.parametrize(("name", "function"), sorted(FORMER_NAMES.items()))
def test_each_former_name_means_its_moved_function(app: Flask, name: str, function: Callable[..., Any]) -> None:
    registry = job_registry(app)
    assert registry.function(name) is function
    assert registry.function(f"{function.__module__}.{function.__qualname__}") is function
    with app.app_context():
        assert resolve_job(name.rpartition(".")[0] + ":" + name.rpartition(".")[2]) is function


@pytest.mark.parametrize(
    "name",
    ["os.system", "jobs.users.give_up", "accounts.persistence.user_record", "jobs.users.persist_user ", "", None],
)
def test_any_other_name_is_refused(app: Flask, name: str | None) -> None:
    with pytest.raises(ValueError, match="not a Gatehouse job"):
        job_registry(app).function(name)


def test_a_job_naming_another_function_is_refused_by_the_worker_s_job_class(app: Flask) -> None:
    with app.app_context():
        job = job_queue().enqueue("os.getcwd")
        fetched = GatehouseJob.fetch(job.id, connection=job_queue().connection, serializer=job_queue().serializer)
        with pytest.raises(ValueError, match="not a Gatehouse job"):
            fetched.perform()


def test_two_functions_under_one_name_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="two job functions"):
        JobRegistry([JobSpec(persist_user), JobSpec(store_audit_event, former_names=(JobSpec(persist_user).name,))])


def test_jobs_queued_under_every_former_name_still_run(app: Flask) -> None:
    with app.test_request_context("/"):
        event = build_event("sign_out", "user", issuer=ISSUER, subject="alice")
    with app.app_context():
        queue = job_queue()
        queue.enqueue("jobs.users.persist_user", job_record(subject="bob"))
        queue.enqueue("jobs.users.persist_user", job_record(subject="carol"))
        queue.enqueue("jobs.users.persist_user_status", ISSUER, "bob", True, 5)
        queue.enqueue("jobs.audit.store_audit_event", event)
        queue.enqueue("jobs.accounts.delete_user_row", ISSUER, "carol", 10_000)
        for job in queue.get_jobs():
            job.perform()
        users = {row.subject: row for row in db.session.execute(select(User)).scalars()}
        assert set(users) == {"bob"}
        assert users["bob"].disabled
        tombstones = [row.subject for row in db.session.execute(select(DeletedUser)).scalars()]
        assert tombstones == ["carol"]
        [stored] = db.session.execute(select(AuditEvent)).scalars()
        assert stored.event_id == event["event_id"]


def test_an_outbox_row_under_a_former_name_drains_and_runs(app: Flask) -> None:
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                insert(OutboxJob).values(
                    func="jobs.users:persist_user", args=[job_record(subject="dora")], error="queue down"
                )
            )
        assert drain_outbox(put_on_queue) == 1
        [job] = job_queue().get_jobs()
        assert job.func_name == "accounts.persistence.persist_user"
        job.perform()
        assert db.session.execute(select(User.subject)).scalars().all() == ["dora"]
