"""Persisting users: idempotent, order-safe upserts, then the shared state in Redis brought up to date.

`persist_user` is the job (one record). The worker may run many queued persist_user jobs
at once through `persist_users` (jobs/batch.py): one transaction for all their upserts, one
query for the rows and one Redis pipeline to publish them. Either path leaves the same rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any, NoReturn

from flask import current_app
from redis import Redis
from redis.client import Pipeline
from rq import get_current_job
from sqlalchemy import Insert, case, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

import metrics
from connections import session_redis
from extensions import db
from models.user import User, utcnow
from sessions import keys
from sessions.store import session_store
from users.deletion import without_deleted
from users.schema import IDENTITY_CLAIMS, PROFILE_FIELDS, clean_record, encode, profile_from

log = logging.getLogger(__name__)


# Failures that no retry can cure: the job fails at once (visible in `jobs status`) instead of
# retrying for minutes. Later jobs of the same user are independent and still run.
PERMANENT_FAILURES = (DataError, IntegrityError, KeyError, TypeError, ValueError)


def persist_user(record: dict[str, Any]) -> None:
    """Upsert a user by (issuer, subject); repeated or late jobs never undo newer data."""
    try:
        user = keys.user_tag(record["issuer"], record["subject"])
    except (KeyError, TypeError) as error:
        give_up("persist_user got a record without issuer and subject", error)
    record = clean_record(record)
    try:
        _upsert([record])
        db.session.commit()
        row = db.session.execute(
            select(User).filter_by(issuer=record["issuer"], subject=record["subject"])
        ).scalar_one_or_none()
        if row is not None:  # None: the user deleted their account after this record was queued
            publish_persisted(row)
        metrics.persisted(get_current_job())
    except PERMANENT_FAILURES as error:
        db.session.rollback()
        give_up(f"persist_user failed for user {user}", error)
    except Exception:
        db.session.rollback()
        # The user's opaque id only: no personal data in logs.
        log.exception("persist_user failed for user %s", user)
        raise
    finally:
        db.session.remove()


def persist_users(records: Sequence[Mapping[str, Any]]) -> None:
    """Upsert many users in one transaction, then publish every row in one Redis pipeline.

    What `persist_user` does for each record, at a fraction of the cost. Any error is raised
    as it is, with nothing committed (or, if publishing failed, with every row committed):
    the caller (the worker) then retries every job, or runs them one at a time so that a
    bad record fails alone.
    """
    cleaned = [clean_record(dict(record)) for record in records]
    try:
        _upsert(cleaned)
        db.session.commit()
        users = sorted({(record["issuer"], record["subject"]) for record in cleaned})
        rows = db.session.execute(select(User).where(tuple_(User.issuer, User.subject).in_(users))).scalars()
        with session_redis().pipeline(transaction=False) as pipe:
            for row in rows:
                publish_persisted(row, client=pipe)
            pipe.execute()
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def give_up(message: str, error: BaseException) -> NoReturn:
    """Fail the current job for good (no retries), logging `message` and the error's type only."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
    reason = failure_reason(error)
    log.error("%s: %s (permanent: not retried)", message, reason)
    raise PermanentJobFailure(f"{message}: {reason}") from None


def failure_reason(error: BaseException) -> str:
    """What went wrong, without the values involved (they may be personal data).

    For a database error that is the database's primary message ("value too long for
    type character varying(80)"), never its detail or the statement's parameters.
    """
    if isinstance(error, DBAPIError) and error.orig is not None:
        diagnosis = getattr(error.orig, "diag", None)
        primary = getattr(diagnosis, "message_primary", None) or str(error.orig).splitlines()[0]
        return f"{type(error).__name__}: {primary}"
    return type(error).__name__


class PermanentJobFailure(Exception):
    """A job failed for a reason no retry can cure."""


def persist_user_status(issuer: str, subject: str, disabled: bool, version: int) -> None:
    """Store a user's disabled flag, unless a newer change of it is already stored."""
    try:
        db.session.execute(
            update(User)
            .where(User.issuer == issuer, User.subject == subject, User.status_version < version)
            .values(disabled=disabled, status_version=version, updated_at=utcnow())
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("persist_user_status failed for user %s", keys.user_tag(issuer, subject))
        raise
    finally:
        db.session.remove()


def publish_persisted(row: User, client: Redis | Pipeline | None = None) -> None:
    """Give every session of the user what the database now holds (newer profile, a disabled flag)."""
    user = keys.user_tag(row.issuer, row.subject)
    profile = profile_from({field: getattr(row, field) for field in PROFILE_FIELDS})
    session_store(current_app).scripts.persisted(
        keys=[keys.user_key(user), keys.index_key(user)],
        args=[
            encode(profile),
            row.profile_version,
            "1" if row.disabled else "0",
            current_app.config["USER_STATE_TTL"],
            keys.session_key(user, ""),
            keys.tokens_key(user, ""),
            time.time(),
            max(row.identity_version, row.profile_version),
        ],
        client=client,
    )


def _upsert(records: Sequence[Mapping[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO UPDATE for each record, in the current transaction.

    Rows are written in (issuer, subject) order, so two workers' transactions lock rows in
    the same order and cannot deadlock on PostgreSQL. Each row is its own statement
    (executemany), so several records of one user in a batch are applied one after another
    and the version guards leave the newest of each, as separate jobs would.
    """
    now = utcnow()
    live = without_deleted(records)  # a record queued before its user deleted the account changes nothing
    ordered = sorted(live, key=lambda record: (record["issuer"], record["subject"]))
    connection = db.session.connection()
    # Consecutive records with the same changed-fields set share one statement.
    for only, group in groupby(ordered, key=_changed_fields):
        connection.execute(_upsert_statement(only), [_row(record, now) for record in group])


def _changed_fields(record: Mapping[str, Any]) -> tuple[str, ...] | None:
    # An edit made before the user's saved profile could be loaded carries the fields the user
    # changed ("only"); the others keep what the row holds.
    changed = record.get("only")
    return None if changed is None else tuple(sorted(changed))


def _row(record: Mapping[str, Any], now: Any) -> dict[str, Any]:
    """The column values one record gives its row."""
    return {
        "issuer": record["issuer"],
        "subject": record["subject"],
        **{field: record.get(field) for field in IDENTITY_CLAIMS},
        "identity_version": int(record["identity_version"]),
        **{field: record.get(field) for field in PROFILE_FIELDS},
        "profile_version": int(record["profile_version"]),
        "created_at": now,
        "updated_at": now,
    }


def _upsert_statement(only: tuple[str, ...] | None) -> Insert:
    """The upsert, each group of columns guarded by its version (`only`: the profile fields it may change)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(User)
    excluded = insert.excluded
    columns = User.__table__.c
    newer_identity = excluded.identity_version > columns.identity_version
    newer_profile = excluded.profile_version > columns.profile_version

    def take_if(newer: Any, name: str) -> Any:
        # On UPDATE both SQLite and PostgreSQL read column names as the old row's values.
        return case((newer, excluded[name]), else_=columns[name])

    updates = {name: take_if(newer_identity, name) for name in (*IDENTITY_CLAIMS, "identity_version")}
    profile_columns = [name for name in PROFILE_FIELDS if only is None or name in only]
    updates |= {name: take_if(newer_profile, name) for name in (*profile_columns, "profile_version")}
    updates["updated_at"] = case((or_(newer_identity, newer_profile), excluded.updated_at), else_=columns.updated_at)
    statement: Insert = insert.on_conflict_do_update(index_elements=["issuer", "subject"], set_=updates)
    return statement
