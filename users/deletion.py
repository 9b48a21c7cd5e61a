"""Deleting an account: every session ends at once (Redis), the row and tombstone follow by the queue.

Nothing but a new sign-in brings the user back. The deletion takes a version from Redis's clock
above every version of the user's data; a persistence job for the user that was still queued or
being retried carries older versions, so the tombstone makes it a no-op (`without_deleted`), and
`persisted.lua` ignores its write-back. A new sign-in gets newer versions and starts afresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models.deleted_user import DeletedUser
from models.user import User, utcnow
from sessions import keys
from sessions.store import session_store


def end_account(issuer: str, subject: str) -> tuple[int, int]:
    """Delete the user's state and sessions from Redis now; returns (deletion version, sessions ended)."""
    user = keys.user_tag(issuer, subject)
    version, ended = session_store(current_app).scripts.delete_user(
        keys=[keys.user_key(user), keys.index_key(user)],
        args=[keys.session_key(user, ""), keys.tokens_key(user, ""), current_app.config["USER_STATE_TTL"]],
    )
    return int(version), int(ended)


def bury(issuer: str, subject: str, version: int) -> None:
    """Delete the user's row unless a newer sign-in wrote it, and keep the tombstone (current transaction)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(DeletedUser).values(
        issuer=issuer, subject=subject, deleted_version=version, deleted_at=utcnow()
    )
    newer = insert.excluded.deleted_version > DeletedUser.__table__.c.deleted_version
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["issuer", "subject"],
            set_={"deleted_version": insert.excluded.deleted_version, "deleted_at": insert.excluded.deleted_at},
            where=newer,
        )
    )
    db.session.execute(
        delete(User).where(
            User.issuer == issuer,
            User.subject == subject,
            User.identity_version <= version,
            User.profile_version <= version,
        )
    )


def without_deleted(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records not older than their user's deletion (one query for the whole batch)."""
    users = {(record["issuer"], record["subject"]) for record in records}
    if not users:
        return []
    query = select(DeletedUser.issuer, DeletedUser.subject, DeletedUser.deleted_version).where(
        tuple_(DeletedUser.issuer, DeletedUser.subject).in_(sorted(users))
    )
    deleted = {(issuer, subject): version for issuer, subject, version in db.session.execute(query)}
    return [
        record
        for record in records
        if max(int(record["identity_version"]), int(record["profile_version"]))
        > deleted.get((record["issuer"], record["subject"]), -1)
    ]
