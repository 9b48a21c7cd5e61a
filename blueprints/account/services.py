"""What deleting the signed-in user's account does, in order."""

from __future__ import annotations

from flask import current_app

from audit import events as audit
from jobs.accounts import delete_user_row
from jobs.queues import enqueue
from sessions.store import session_store
from sessions.user import current_session
from users.deletion import end_account


def delete_current_account() -> int:
    """End every session now, queue the row's deletion, record it; returns how many sessions ended."""
    stored = current_session()
    identity = stored.identity
    if identity is None:
        raise LookupError("no signed-in user")
    # Recorded first, while the session (and its handle) still exists.
    audit.record_for_session("account_deleted", "user")
    version, ended = end_account(identity.issuer, identity.subject)
    enqueue(delete_user_row, identity.issuer, identity.subject, version)
    session_store(current_app).destroy(stored)
    return ended
