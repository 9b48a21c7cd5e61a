"""Migrations, run in process through Flask-Migrate: they keep the rows they find and change no user.

tests/integration/test_cli_db_upgrade.py runs `flask db upgrade` as a child process and compares its schema
with the models.
"""

from __future__ import annotations

import logging.config
from pathlib import Path
from unittest import mock

import flask_migrate
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from app import create_app
from extensions import db
from tests.support.environments import MIGRATION_SETTINGS


def upgrade(database: Path, revision: str = "head", command: str = "upgrade") -> None:
    """`flask db upgrade REVISION` (or `downgrade`) on a SQLite file, run in this process through Flask-Migrate.

    A child process costs a second of imports; in process, Alembic's env.py would reconfigure this
    process's logging (`fileConfig` closes every handler, pytest's too), so it is a no-op meanwhile.
    """
    app = create_app({**MIGRATION_SETTINGS, "DATABASE_URL": f"sqlite:///{database}"})
    with mock.patch.object(logging.config, "fileConfig"), app.app_context():
        (flask_migrate.upgrade if command == "upgrade" else flask_migrate.downgrade)(revision=revision)
        db.engine.dispose()


def test_counting_repeats_keeps_every_audit_event_stored_before_it(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
    upgrade(database, "a7d2c9e4b1f6")  # the revision before audit events had repeat counts
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            for event_id in ("old-1", "old-2"):  # identical but for their ids: they stay two rows
                connection.execute(
                    text(
                        "INSERT INTO audit_events (event_id, occurred_at, kind, outcome, subject)"
                        " VALUES (:event_id, '2026-12-01 09:00:00.000000', 'session_revoked', 'user_others', 'alice')"
                    ),
                    {"event_id": event_id},
                )
        upgrade(database)
        with engine.begin() as connection:
            rows = connection.execute(
                text("SELECT event_id, repeats, repeat_key, last_occurred_at FROM audit_events ORDER BY id")
            ).all()
            assert [tuple(row) for row in rows] == [("old-1", 1, None, None), ("old-2", 1, None, None)]
            new_row = (
                "INSERT INTO audit_events (event_id, occurred_at, kind, repeat_key)"
                " VALUES (:event_id, '2026-12-03 09:00:00.000000', 'sign_in', 'k')"
            )
            connection.execute(text(new_row), {"event_id": "new-1"})
            with pytest.raises(IntegrityError):  # a repeat key is unique where it is set
                connection.execute(text(new_row), {"event_id": "new-2"})
    finally:
        engine.dispose()


ALL_USERS = text("SELECT * FROM users ORDER BY id")  # every column of every row


def test_user_identities_give_every_existing_user_their_own_identity_and_change_no_user(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
    upgrade(database, "d4e1b7c9a2f5")  # the revision before user identities
    engine = create_engine(f"sqlite:///{database}")
    users = [
        (3, "https://idp.example.test", "alice", "2026-11-01 08:00:00.000000", "2026-12-01 09:30:00.000000"),
        (7, "https://idp.example.test", "bob", "2026-11-02 08:00:00.000000", "2026-11-02 08:00:00.000000"),
        (9, "https://other.example.test", "alice", "2026-11-03 08:00:00.000000", "2026-12-02 10:00:00.000000"),
    ]
    try:
        with engine.begin() as connection:
            for user_id, issuer, subject, created, updated in users:
                connection.execute(
                    text(
                        "INSERT INTO users (id, issuer, subject, email, identity_version, display_name, locale,"
                        " timezone, profile_version, disabled, status_version, created_at, updated_at)"
                        " VALUES (:id, :issuer, :subject, 'x@example.test', 5, 'X', 'en', 'UTC', 6, 0, 0,"
                        " :created, :updated)"
                    ),
                    {"id": user_id, "issuer": issuer, "subject": subject, "created": created, "updated": updated},
                )
            before = connection.execute(ALL_USERS).all()
        upgrade(database, "c8f2a6d4e1b9")  # up to the identity unlinks, as before users had email_verified
        with engine.begin() as connection:
            assert connection.execute(ALL_USERS).all() == before
            rows = connection.execute(
                text(
                    "SELECT user_id, provider, issuer, subject, linked_at, last_used_at FROM user_identities"
                    " ORDER BY user_id"
                )
            ).all()
            assert [tuple(row) for row in rows] == [
                (user_id, "oidc", issuer, subject, created, updated)
                for user_id, issuer, subject, created, updated in users
            ]
            with pytest.raises(IntegrityError):  # an identity belongs to one account only
                connection.execute(
                    text(
                        "INSERT INTO user_identities (user_id, provider, issuer, subject, linked_at)"
                        " VALUES (7, 'corp', 'https://idp.example.test', 'alice', '2026-12-10 09:00:00.000000')"
                    )
                )
    finally:
        engine.dispose()


def test_downgrading_user_identities_drops_the_table_and_keeps_the_users(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
    upgrade(database)
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (issuer, subject, identity_version, display_name, locale, timezone,"
                    " profile_version, disabled, status_version, created_at, updated_at) VALUES ('i', 's', 1, 'X',"
                    " 'en', 'UTC', 0, 0, 0, '2026-11-01 08:00:00.000000', '2026-11-01 08:00:00.000000')"
                )
            )
        upgrade(database, "d4e1b7c9a2f5", command="downgrade")
        with engine.connect() as connection:
            tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars().all()
            assert "user_identities" not in tables
            assert connection.execute(text("SELECT subject FROM users")).scalars().all() == ["s"]
    finally:
        engine.dispose()


def test_email_verified_leaves_every_user_unverified_and_changes_nothing_else(tmp_path: Path) -> None:
    """No existing row may be matched by its address before its provider has said again that it verified it."""
    database = tmp_path / "migrated.db"
    upgrade(database, "c8f2a6d4e1b9")
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (issuer, subject, email, identity_version, display_name, locale, timezone,"
                    " profile_version, disabled, status_version, created_at, updated_at) VALUES ('i', 's',"
                    " 'a@example.test', 1, 'X', 'en', 'UTC', 0, 0, 0, '2026-11-01 08:00:00.000000',"
                    " '2026-11-01 08:00:00.000000')"
                )
            )
            before = connection.execute(ALL_USERS).all()
        upgrade(database)
        with engine.connect() as connection:
            after = connection.execute(ALL_USERS).mappings().all()
            assert [tuple(row.values())[:-1] for row in after] == [tuple(row) for row in before]
            assert [row["email_verified"] for row in after] == [None]
            indexes = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars().all()
            assert "ix_users_email" in indexes
        upgrade(database, "c8f2a6d4e1b9", command="downgrade")
        with engine.connect() as connection:
            assert connection.execute(ALL_USERS).all() == before
    finally:
        engine.dispose()
