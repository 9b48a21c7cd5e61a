"""Deleting an account: every session ends at once (Redis), the row and tombstone follow by the queue.

Nothing but a new sign-in brings the user back. The deletion takes a version from Redis's clock
above every version of the user's data; a persistence job for the user that was still queued or
being retried carries older versions, so the tombstone makes it a no-op (`without_deleted`), and
`persisted.lua` ignores its write-back. A new sign-in gets newer versions and starts afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from audit import events as audit
from extensions import db
from jobs.failures import job_transaction
from jobs.queues import enqueue
from models.batch_queries import pairs_in
from models.deleted_user import DeletedUser
from models.identity_unlink import IdentityUnlink
from models.user import User, utcnow
from models.user_identity import UserIdentity
from sessions.lifecycle import end_user_session
from sessions.user import current_session
from sessions.user_state import delete_user_state
from users.tags import user_tag

log = logging.getLogger(__name__)


def delete_current_account() -> int:
    """End every session now, queue the row's deletion, record it; returns how many sessions ended."""
    identity = current_session().identity
    if identity is None:
        raise LookupError("no signed-in user")
    # Recorded first, while the session (and its handle) still exists.
    audit.record_for_session("account_deleted", "user")
    version, ended = end_account(identity.issuer, identity.subject)
    # Taken after the account_deleted event: every event of this account happened before it (audit/activity.py).
    deleted_at = utcnow().isoformat()
    enqueue(delete_user_row, identity.issuer, identity.subject, version, deleted_at)
    end_user_session()
    return ended


def end_account(issuer: str, subject: str) -> tuple[int, int]:
    """Delete the user's state and sessions from Redis now; returns (deletion version, sessions ended)."""
    return delete_user_state(user_tag(issuer, subject))


def delete_user_row(issuer: str, subject: str, version: int, deleted_at: str | None = None) -> None:
    """Delete the user's row and keep their tombstone; a row a newer sign-in wrote stays.

    `deleted_at` is when the deletion was asked for (ISO 8601); jobs queued before it was passed have none.
    """
    when = datetime.fromisoformat(deleted_at) if isinstance(deleted_at, str) else utcnow()
    with job_transaction(log, "delete_user_row failed for user %s", user_tag(issuer, subject)):
        bury(issuer, subject, int(version), when)


def bury(issuer: str, subject: str, version: int, deleted_at: datetime) -> None:
    """Delete the user's row, identities and unlink times, unless a newer sign-in wrote the row; keep the tombstone.

    In the current transaction.
    """
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(DeletedUser).values(
        issuer=issuer, subject=subject, deleted_version=version, deleted_at=deleted_at
    )
    newer = insert.excluded.deleted_version > DeletedUser.__table__.c.deleted_version
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["issuer", "subject"],
            set_={"deleted_version": insert.excluded.deleted_version, "deleted_at": insert.excluded.deleted_at},
            where=newer,
        )
    )
    deleted = db.session.execute(
        delete(User)
        .where(
            User.issuer == issuer,
            User.subject == subject,
            User.identity_version <= version,
            User.profile_version <= version,
        )
        .returning(User.id)
    ).scalars()
    # Then its identities, the linked ones too: PostgreSQL's ON DELETE CASCADE has already removed
    # them, SQLite (foreign keys not enforced) has not. The users row first, as the upsert locks it first.
    ids = list(deleted)
    if ids:
        db.session.execute(delete(UserIdentity).where(UserIdentity.user_id.in_(ids)))
        # Its unlinks' times go too: the tombstone above already refuses every link asked for before now.
        db.session.execute(
            delete(IdentityUnlink).where(IdentityUnlink.user_issuer == issuer, IdentityUnlink.user_subject == subject)
        )


@lru_cache(maxsize=1)
def _deleted_versions() -> Select[str, str, int]:
    """The deletion versions of the users :users (models/batch_queries.py)."""
    return select(DeletedUser.issuer, DeletedUser.subject, DeletedUser.deleted_version).where(
        pairs_in("users", DeletedUser.issuer, DeletedUser.subject)
    )


def without_deleted(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records not older than their user's deletion (one query for the whole batch)."""
    users = {(record["issuer"], record["subject"]) for record in records}
    if not users:
        return []
    rows = db.session.execute(_deleted_versions(), {"users": sorted(users)})
    deleted = {(issuer, subject): version for issuer, subject, version in rows}
    return [
        record
        for record in records
        if max(int(record["identity_version"]), int(record["profile_version"]))
        > deleted.get((record["issuer"], record["subject"]), -1)
    ]
