"""The users table's upsert: idempotent and order-safe, each group of columns guarded by its version.

A job run twice, or a late job, never undoes newer data: the identity claims (and whether the
provider verified the address) change only with a newer identity version, the profile fields only
with a newer profile version. A record older than its user's deletion changes nothing
(accounts/deletion.py). Every user stored also gets their
primary identity row, and a record's `signed_in_with` marks the identity it used (accounts/identities.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import groupby
from typing import Any

from sqlalchemy import Insert, case, or_
from sqlalchemy.dialects import postgresql, sqlite

from accounts.deletion import without_deleted
from accounts.identities import record_identities, without_linked_identities
from extensions import db
from models.user import User, utcnow
from users.schema import EMAIL_VERIFIED, IDENTITY_CLAIMS, PROFILE_FIELDS


def upsert_users(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """INSERT … ON CONFLICT DO UPDATE for each record, then their identity rows, in the current transaction.

    Returns the records left out because their identity is linked into another account
    (accounts/relinking.py folds those back once the transaction is committed).

    Rows are written in (issuer, subject) order, so two workers' transactions lock rows in
    the same order and cannot deadlock on PostgreSQL. Each row is its own statement
    (executemany), so several records of one user in a batch are applied one after another
    and the version guards leave the newest of each, as separate jobs would.
    """
    now = utcnow()
    alive = without_deleted(records)  # a record queued before its user deleted the account changes nothing
    live = without_linked_identities(alive)  # nor does one of an identity linked into another account
    ordered = sorted(live, key=lambda record: (record["issuer"], record["subject"]))
    connection = db.session.connection()
    # Consecutive records with the same changed-fields set share one statement.
    for only, group in groupby(ordered, key=_changed_fields):
        connection.execute(_upsert_statement(only), [_row(record, now) for record in group])
    # Then each user's identities (accounts/identities.py), after every users row: the same lock order everywhere.
    record_identities(ordered, now)
    return [record for record in alive if record not in live]


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
        EMAIL_VERIFIED: record.get(EMAIL_VERIFIED),  # True or None (users/schema.py clean_record)
        "identity_version": int(record["identity_version"]),
        **{field: record.get(field) for field in PROFILE_FIELDS},
        "profile_version": int(record["profile_version"]),
        "created_at": now,
        "updated_at": now,
    }


def _upsert_statement(only: tuple[str, ...] | None) -> Insert:
    """The upsert, each group of columns guarded by its version (`only`: the profile fields it may change)."""
    known = None if only is None else tuple(name for name in PROFILE_FIELDS if name in only)
    return _built_upsert(db.engine.dialect.name, known)


# Building the statement (its `excluded` alias, a CASE per column) cost more CPU than running it
# for a batch of one or two; it holds no values (executemany's rows carry them), so one per shape
# serves every batch of a long-lived work horse (jobs/horse.py).
@lru_cache(maxsize=64)
def _built_upsert(dialect_name: str, only: tuple[str, ...] | None) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    insert = dialect.insert(User)
    excluded = insert.excluded
    columns = User.__table__.c
    newer_identity = excluded.identity_version > columns.identity_version
    newer_profile = excluded.profile_version > columns.profile_version

    def take_if(newer: Any, name: str) -> Any:
        # On UPDATE both SQLite and PostgreSQL read column names as the old row's values.
        return case((newer, excluded[name]), else_=columns[name])

    updates = {name: take_if(newer_identity, name) for name in (*IDENTITY_CLAIMS, EMAIL_VERIFIED, "identity_version")}
    profile_columns = [name for name in PROFILE_FIELDS if only is None or name in only]
    updates |= {name: take_if(newer_profile, name) for name in (*profile_columns, "profile_version")}
    updates["updated_at"] = case((or_(newer_identity, newer_profile), excluded.updated_at), else_=columns.updated_at)
    statement: Insert = insert.on_conflict_do_update(index_elements=["issuer", "subject"], set_=updates)
    return statement
