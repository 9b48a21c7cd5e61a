"""Databases already at the latest migration, copied from a template that `flask db upgrade` made once.

`flask db upgrade` costs a new process about 1.2 s of CPU: importing the app and Alembic, then every
migration. The suite starts over a hundred deployments, and each paid it. Now each pytest process runs the
command once per backend, into a template, and a deployment's database is a copy of it:
- SQLite: a copy of the template's file;
- PostgreSQL: `CREATE DATABASE … TEMPLATE` (PostgresCluster.create_database(migrated=True)).

A copy is byte for byte what the command makes, and tests/support/stack.py still runs the command for
a database the template did not make and is not at its revision (a database of an older schema, say). The
migrations themselves are tested from an empty database (tests/unit/test_migrations.py,
tests/integration/test_cli_db_upgrade.py, tests/e2e/test_migrations.py).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory

from tests.support.cli import ROOT, run_flask
from tests.support.environments import MIGRATION_SETTINGS

MIGRATIONS = ROOT / "migrations"


def migrate(database_url: str) -> None:
    """`flask db upgrade` on `database_url`, in the testing environment (its Redis is never contacted)."""
    run_flask("db", "upgrade", env={**MIGRATION_SETTINGS, "DATABASE_URL": database_url}, timeout=120, check=True)


@functools.cache
def sqlite_template() -> Path:
    """This process's migrated SQLite template (made on first use, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="gatehouse-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / "migrated.db"
    migrate(f"sqlite:///{template}")
    return template


def copy_sqlite_template(database: Path) -> str:
    """Put a migrated database at `database` (a file that must not exist yet) and return its URL."""
    if database.exists():
        raise FileExistsError(f"{database} already exists; a copy would replace its data")
    shutil.copyfile(sqlite_template(), database)
    return f"sqlite:///{database}"


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (sqlite:///path), else None."""
    prefix = "sqlite:///"
    return Path(database_url[len(prefix) :]) if database_url.startswith(prefix) else None


def revision(database_url: str) -> str | None:
    """The Alembic revision a database is at; None when it has no tables of ours (or does not exist)."""
    path = sqlite_path(database_url)
    try:
        if path is not None:
            if not path.exists():
                return None
            with sqlite3.connect(path) as connection:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        else:
            with psycopg.connect(database_url, connect_timeout=10) as connection:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
        return None
    return None if row is None else str(row[0])


@functools.cache
def head_revision() -> str | None:
    """The latest migration's revision, as Alembic reads it from migrations/ (no database, no process)."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def is_migrated(database_url: str) -> bool:
    """True when the database is at the latest revision: `flask db upgrade` would change nothing."""
    return revision(database_url) == head_revision()
