"""Operator actions on a user: disable (every session ends, sign-in refused) and enable."""

from __future__ import annotations

from sqlalchemy import select

from accounts.identities import identity_owner
from accounts.persistence import persist_user_status
from audit import events as audit
from extensions import db
from jobs.queues import enqueue
from models.user import User
from sessions.user_state import set_disabled as set_disabled_in_store
from users.tags import user_tag


class UnknownUser(LookupError):
    """No such user has ever been persisted."""


def find_account(issuer: str, subject: str) -> tuple[str, str]:
    """The primary (issuer, subject) of the account that has this identity, its own or a linked one.

    Raises UnknownUser when no account has it, and SQLAlchemyError when the database cannot be read.
    """
    owner = identity_owner(issuer, subject)
    if owner is None:
        raise UnknownUser(f"no user with subject {subject!r} at issuer {issuer!r}")
    return owner


def set_disabled(issuer: str, subject: str, disabled: bool) -> int:
    """Disable or enable a user now (Redis), and queue the flag for their row; returns sessions ended.

    (issuer, subject) is the account's primary identity (`find_account` finds it from any of its
    identities). The user must exist in the database (raises UnknownUser otherwise). Redis is
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
