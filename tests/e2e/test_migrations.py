"""The schema migrations run on both supported databases: SQLite and a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.support.postgres import DATABASES, database_url_for
from tests.support.stack import CLIENT_ID, CLIENT_SECRET, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def flask_db(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app db ARGS` against `database_url` (nothing else is contacted)."""
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "migration-tests-secret-key-0123456789abcdef",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "OIDC_ISSUER": "http://127.0.0.1:1",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "DATABASE_URL": database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(database_url: str) -> set[str]:
    """The tables the database holds right now."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", DATABASES)
def test_migrations_upgrade_match_the_models_downgrade_and_upgrade_again(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """upgrade -> `db check` finds nothing the models lack -> downgrade base empties it -> upgrade works again."""
    database_url = database_url_for(backend, request, tmp_path)

    upgraded = flask_db(database_url, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    created = tables(database_url)
    assert {"users", "alembic_version"} <= created

    checked = flask_db(database_url, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    downgraded = flask_db(database_url, "downgrade", "base")
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables(database_url) <= {"alembic_version"}

    again = flask_db(database_url, "upgrade")
    assert again.returncode == 0, again.stderr
    assert tables(database_url) == created
