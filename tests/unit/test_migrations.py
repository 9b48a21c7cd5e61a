"""Migrations: `flask db upgrade` builds exactly the schema the models describe."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from extensions import db
from tests.support.cli import run_flask


def test_db_upgrade_matches_the_models(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
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
    upgrade = run_flask("db", "upgrade", env=env, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr

    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    finally:
        engine.dispose()
    assert differences == []
