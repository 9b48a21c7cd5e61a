"""Persisting users: the plain record a job carries, queuing it, and the jobs that upsert it.

Every job carries the user's whole record (identity and profile, each with the version Redis
gave it), so whichever job runs last, the row ends at the newest of each, and a lost job is
made good by the next one.

`persist_user` is the job (one record). The worker may run many queued persist_user jobs at
once through `persist_users` (jobs/batch.py): one transaction for all their upserts, one query
for the rows and one Redis pipeline to publish them. Either path leaves the same rows, the users'
identity rows included (accounts/identities.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from rq import get_current_job
from sqlalchemy import Select, select, update

import metrics
from accounts.relinking import fold_back
from accounts.upsert import upsert_users
from extensions import db
from jobs.failures import PERMANENT_FAILURES, give_up, job_transaction
from jobs.queues import enqueue
from models.batch_queries import pairs_in
from models.user import User, utcnow
from sessions.user import current_session
from sessions.user_state import PersistedUser, publish_persisted
from users.schema import (
    EMAIL_VERIFIED,
    IDENTITY_CLAIMS,
    PROFILE_FIELDS,
    clean_record,
    identity_dict,
    profile_dict,
    profile_from,
)
from users.tags import user_tag

log = logging.getLogger(__name__)


def user_record(
    identity: Mapping[str, Any], profile: Mapping[str, Any], *, identity_version: int, profile_version: int
) -> dict[str, Any]:
    """The plain data a persistence job needs."""
    return {
        "issuer": identity["issuer"],
        "subject": identity["subject"],
        **{claim: identity.get(claim) for claim in IDENTITY_CLAIMS},
        "identity_version": identity_version,
        **{field: profile.get(field) for field in PROFILE_FIELDS},
        "profile_version": profile_version,
    }


def enqueue_persistence(record: Mapping[str, Any]) -> None:
    """Queue the upsert of one user (kept in the SQL outbox if the queue is down)."""
    enqueue(persist_user, dict(record))


def persist_signed_in_user(signed_in_with: Mapping[str, str] | None = None, *, email_verified: bool = False) -> None:
    """After sign-in: queue the upsert of the user as the new session now shows them.

    `email_verified`: the provider said it verified the session's address (users.email_verified).

    `signed_in_with` ({"provider", "issuer", "subject"}) is the identity the sign-in used, when that
    may be an identity linked to the account (the session's identity is the account's primary): its
    job marks that identity as used (accounts/identities.py `record_identities`).
    """
    stored = current_session()
    if stored.identity is None or stored.profile is None:
        raise RuntimeError("no signed-in session to persist")
    record = user_record(
        identity_dict(stored.identity),
        profile_dict(stored.profile, stored.profile_version),
        identity_version=stored.identity_version,
        profile_version=stored.profile_version,
    )
    if email_verified:
        record[EMAIL_VERIFIED] = True
    if signed_in_with is not None:
        record["signed_in_with"] = {key: signed_in_with[key] for key in ("provider", "issuer", "subject")}
    enqueue_persistence(record)


def persist_user(record: dict[str, Any]) -> None:
    """Upsert a user by (issuer, subject); repeated or late jobs never undo newer data."""
    try:
        user = user_tag(record["issuer"], record["subject"])
    except (KeyError, TypeError) as error:
        give_up("persist_user got a record without issuer and subject", error)
    record = clean_record(record)
    # The user's opaque id only: no personal data in logs.
    with job_transaction(log, "persist_user failed for user %s", user, give_up_on=PERMANENT_FAILURES):
        folded = upsert_users([record])
        db.session.commit()
        publish_rows([(record["issuer"], record["subject"])])
        fold_back(folded)
        metrics.persisted(get_current_job())


def persist_users(records: Sequence[Mapping[str, Any]]) -> None:
    """Upsert many users in one transaction, then publish every row in one Redis pipeline.

    What `persist_user` does for each record, at a fraction of the cost. Any error is raised
    as it is, with nothing committed (or, if publishing failed, with every row committed):
    the caller (the worker) then retries every job, or runs them one at a time so that a
    bad record fails alone.
    """
    cleaned = [clean_record(dict(record)) for record in records]
    try:
        folded = upsert_users(cleaned)
        db.session.commit()
        publish_rows(sorted({(record["issuer"], record["subject"]) for record in cleaned}))
        fold_back(folded)
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def publish_rows(users: Sequence[tuple[str, str]]) -> None:
    """Give every session of these users what the database now holds (newer profile, a disabled flag).

    A user with no row (they deleted their account after the record was queued) gets nothing.
    """
    rows = db.session.execute(_users_rows(), {"users": list(users)}).scalars()
    publish_persisted([persisted_state(row) for row in rows])


@lru_cache(maxsize=1)
def _users_rows() -> Select[User]:
    """The rows of the users :users (models/batch_queries.py)."""
    return select(User).where(pairs_in("users", User.issuer, User.subject))


def persisted_state(row: User) -> PersistedUser:
    """What a user's row holds, as their sessions' shared state takes it."""
    return PersistedUser(
        user=user_tag(row.issuer, row.subject),
        profile=profile_from({field: getattr(row, field) for field in PROFILE_FIELDS}),
        profile_version=row.profile_version,
        disabled=row.disabled,
        newest_version=max(row.identity_version, row.profile_version),
    )


def persist_user_status(issuer: str, subject: str, disabled: bool, version: int) -> None:
    """Store a user's disabled flag, unless a newer change of it is already stored."""
    with job_transaction(log, "persist_user_status failed for user %s", user_tag(issuer, subject)):
        db.session.execute(
            update(User)
            .where(User.issuer == issuer, User.subject == subject, User.status_version < version)
            .values(disabled=disabled, status_version=version, updated_at=utcnow())
        )
