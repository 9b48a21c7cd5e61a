"""Operator actions on a user: disable (every session ends, sign-in refused) and enable."""

from __future__ import annotations

from sqlalchemy import select

from accounts.persistence import persist_user_status
from audit import events as audit
from extensions import db
from jobs.queues import enqueue
from models.user import User
from sessions.user_state import set_disabled as set_disabled_in_store
from users.tags import user_tag


class UnknownUser(LookupError):
    """No such user has ever been persisted."""


def set_disabled(issuer: str, subject: str, disabled: bool) -> int:
    """Disable or enable a user now (Redis), and queue the flag for their row; returns sessions ended.

    The user must exist in the database (raises UnknownUser otherwise). Redis is
    changed first so every session ends at once; the row follows through the queue,
    ordered by the version Redis gave the change.
    """
    exists = db.session.execute(select(User.id).filter_by(issuer=issuer, subject=subject)).first() is not None
    db.session.remove()
    if not exists:
        raise UnknownUser(f"no user with subject {subject!r} at issuer {issuer!r}")
    version, ended = set_disabled_in_store(user_tag(issuer, subject), disabled)
    enqueue(persist_user_status, issuer, subject, disabled, version)
    kind = "account_disabled" if disabled else "account_enabled"
    audit.record(kind, "operator", issuer=issuer, subject=subject, detail=f"{ended} sessions ended")
    return ended
