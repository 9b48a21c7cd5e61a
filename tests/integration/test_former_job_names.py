"""Jobs queued before their bodies moved (2026-12) still run in the real worker process.

RQ stores a job's function by its dotted path; a job queued, scheduled or failed under an old
path (jobs.users, jobs.accounts, jobs.audit) must run the moved function, one at a time or in a
batch, and so must an outbox row under the old name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import insert

from audit.events import build_event
from extensions import db
from jobs.queues import job_queue
from models.outbox import OutboxJob
from tests.integration.persisted import queues_idle, user_rows, wait_for_row
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def a_record(stack: Stack, subject: str, **changes: Any) -> dict[str, Any]:
    """A persistence job's record, as a sign-in before the move queued it."""
    return {
        "issuer": stack.provider_url,
        "subject": subject,
        "email": f"{subject}@example.test",
        "name": subject,
        "picture": None,
        "identity_version": 1000,
        "display_name": subject,
        "locale": "en",
        "timezone": "UTC",
        "website": None,
        "bio": None,
        "profile_version": 1000,
        **changes,
    }


def audit_kinds(stack: Stack, subject: str) -> list[str]:
    listed = stack.flask("audit", "list", "--json", "--subject", subject).stdout.splitlines()
    return [json.loads(line)["kind"] for line in listed]


def test_jobs_under_every_former_name_run_in_the_worker(stack: Stack, subject: str) -> None:
    kept, gone = subject, f"{subject}-gone"
    with stack.context() as app:
        with app.test_request_context("/"):
            event = build_event("sign_out", "user", issuer=stack.provider_url, subject=kept)
        queue = job_queue()
        # Queued together, so the worker batches the two persist_user jobs and the audit event.
        jobs = [
            queue.enqueue("jobs.users.persist_user", a_record(stack, kept)),
            queue.enqueue("jobs.users.persist_user", a_record(stack, gone)),
            queue.enqueue("jobs.audit.store_audit_event", event),
        ]
    wait_for_row(stack, kept, display_name=kept)
    wait_for_row(stack, gone, display_name=gone)
    with stack.context():
        jobs += [
            job_queue().enqueue("jobs.users.persist_user_status", stack.provider_url, kept, True, 2000),
            job_queue().enqueue("jobs.accounts.delete_user_row", stack.provider_url, gone, 5000),
        ]

    wait_for_row(stack, kept, disabled=True)
    wait_until(lambda: queues_idle(stack) and not user_rows(stack, gone), timeout=30, what="the row deleted")
    assert audit_kinds(stack, kept) == ["sign_out"]
    assert [job.get_status(refresh=True) for job in jobs] == ["finished"] * 5


def test_an_outbox_row_under_a_former_name_drains_and_runs(stack: Stack, subject: str) -> None:
    with stack.context():
        try:
            with db.engine.begin() as connection:
                connection.execute(
                    insert(OutboxJob).values(
                        func="jobs.users:persist_user", args=[a_record(stack, subject)], error="queue was down"
                    )
                )
        finally:
            db.session.remove()

    # A worker's maintenance may drain it first; either way the row is left for the queue.
    stack.flask("jobs", "drain")

    wait_for_row(stack, subject, display_name=subject)
