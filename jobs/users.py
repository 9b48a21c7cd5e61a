"""Persisting users: one idempotent, order-safe upsert per sign-in or profile edit."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import case, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from connections import session_redis
from extensions import db
from models.user import User, utcnow
from sessions.profile_snapshot import PROFILE_FIELDS, save_snapshot

log = logging.getLogger(__name__)

IDENTITY_FIELDS = ("email", "name", "picture")


def persist_user(record: dict[str, Any]) -> None:
    """Upsert a user by (issuer, subject); repeated or late jobs never undo newer data."""
    try:
        _upsert(record)
        db.session.commit()
        user = db.session.execute(
            select(User).filter_by(issuer=record["issuer"], subject=record["subject"])
        ).scalar_one()
        save_snapshot(session_redis(), user.issuer, user.subject, {**user.to_dict(), "version": user.profile_version})
    except Exception:
        db.session.rollback()
        log.exception("persist_user failed for subject %r at %s", record.get("subject"), record.get("issuer"))
        raise
    finally:
        db.session.remove()


def _upsert(record: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO UPDATE, each group of columns guarded by its version."""
    now = utcnow()
    row = {
        "issuer": record["issuer"],
        "subject": record["subject"],
        **{field: record.get(field) for field in IDENTITY_FIELDS},
        "identity_version": int(record["identity_version"]),
        **{field: record.get(field) for field in PROFILE_FIELDS},
        "profile_version": int(record["profile_version"]),
        "created_at": now,
        "updated_at": now,
    }
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(User).values(**row)
    excluded = insert.excluded
    columns = User.__table__.c
    newer_identity = excluded.identity_version > columns.identity_version
    newer_profile = excluded.profile_version > columns.profile_version

    def take_if(newer: Any, name: str) -> Any:
        # On UPDATE both SQLite and PostgreSQL read column names as the old row's values.
        return case((newer, excluded[name]), else_=columns[name])

    updates = {name: take_if(newer_identity, name) for name in (*IDENTITY_FIELDS, "identity_version")}
    updates |= {name: take_if(newer_profile, name) for name in (*PROFILE_FIELDS, "profile_version")}
    updates["updated_at"] = case((or_(newer_identity, newer_profile), excluded.updated_at), else_=columns.updated_at)
    db.session.execute(insert.on_conflict_do_update(index_elements=["issuer", "subject"], set_=updates))
