"""`flask db upgrade` as an operator runs it (a child process) builds exactly the schema the models describe.

tests/unit/test_migrations.py runs the migrations in process, with rows in the tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import models  # noqa: F401  (every table on db.metadata, which the migrated schema is compared with)
from extensions import db
from tests.support.cli import run_flask
from tests.support.environments import MIGRATION_SETTINGS

pytestmark = pytest.mark.integration


def test_db_upgrade_matches_the_models(tmp_path: Path) -> None:
    database = tmp_path / "migrated.db"
    env = {"PATH": os.environ.get("PATH", ""), **MIGRATION_SETTINGS, "DATABASE_URL": f"sqlite:///{database}"}
    upgraded = run_flask("db", "upgrade", env=env, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr

    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    finally:
        engine.dispose()
    assert differences == []
