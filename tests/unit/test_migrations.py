"""Migrations: `flask db upgrade` builds exactly the schema the models describe, and keeps the rows it finds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from extensions import db
from tests.support.cli import run_flask


def upgrade(database: Path, revision: str = "head") -> None:
    """`flask db upgrade REVISION` on a SQLite file."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GATEHOUSE_ENV": "testing",
        "SECRET_KEY": "unit-test-secret-key-that-is-long-enough",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never contacted by `db upgrade`
        "DATABASE_URL": f"sqlite:///{database}",
        "OIDC_ISSUER": "https://idp.example.test",
        "OIDC_CLIENT_ID": "client",
        "OIDC_CLIENT_SECRET": "secret",
    }
    # A child process: Alembic's env.py reconfigures logging, which would disturb this one.
    upgraded = run_flask("db", "upgrade", revision, env=env, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr


def test_db_upgrade_matches_the_models(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
    upgrade(database)

    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    finally:
        engine.dispose()
    assert differences == []


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
