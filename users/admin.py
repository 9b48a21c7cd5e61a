"""Operator actions on a user: disable (every session ends, sign-in refused) and enable."""

from __future__ import annotations

import time

from flask import current_app
from sqlalchemy import select

from audit import events as audit
from extensions import db
from jobs.queues import enqueue
from jobs.users import persist_user_status
from models.user import User
from sessions import keys
from sessions.store import session_store


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
    user = keys.user_tag(issuer, subject)
    store = session_store(current_app)
    version, ended = store.scripts.set_disabled(
        keys=[keys.user_key(user), keys.index_key(user)],
        args=[
            "1" if disabled else "0",
            current_app.config["USER_STATE_TTL"],
            keys.session_key(user, ""),
            keys.tokens_key(user, ""),
            time.time(),
        ],
    )
    enqueue(persist_user_status, issuer, subject, disabled, int(version))
    kind = "account_disabled" if disabled else "account_enabled"
    audit.record(kind, "operator", issuer=issuer, subject=subject, detail=f"{int(ended)} sessions ended")
    return int(ended)
