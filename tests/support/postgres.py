"""A throwaway PostgreSQL cluster, owned by the `postgres` user, on a free port.

initdb refuses to run as root, so the cluster is created and started with
`runuser -u postgres` in a temporary directory that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.processes import wait_for_port
from tests.support.migrated_databases import copy_sqlite_template, migrate
from tests.support.ports import free_port

# The database create_database(migrated=True) copies: migrated once per cluster by `flask db upgrade`.
MIGRATED_TEMPLATE = "gatehouse_migrated"


def postgres_bin(tool: str) -> str:
    """Path of a PostgreSQL server tool (initdb, pg_ctl), from PATH or Debian's versioned folder."""
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{tool} not found: install Debian's postgresql package (scripts/system-packages.sh does)")
    return found


def _as_postgres(args: list[str]) -> list[str]:
    return args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]


@dataclass
class PostgresCluster:
    """A running cluster: its port, data folder and a URL for the `gatehouse` database."""

    port: int
    data_dir: str
    has_migrated_template: bool = field(default=False, compare=False)

    def url(self, database: str = "gatehouse") -> str:
        """A DATABASE_URL for `database` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, migrated: bool = False) -> str:
        """Create a database and return its URL: empty, or `migrated` to the latest revision (a template's copy)."""
        template: list[str] = []
        if migrated:
            if not self.has_migrated_template:
                migrate(self.create_database(MIGRATED_TEMPLATE))
                self.has_migrated_template = True
            template = ["--template", MIGRATED_TEMPLATE]
        createdb = postgres_bin("createdb")
        command = [createdb, "-h", "127.0.0.1", "-p", str(self.port), *template, name]
        subprocess.run(_as_postgres(command), check=True, timeout=60)
        return self.url(name)

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl against this cluster (start, stop, restart)."""
        subprocess.run(
            _as_postgres([postgres_bin("pg_ctl"), "-D", self.data_dir, "-w", "-t", "60", *args]),
            check=True,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", os.path.join(self.data_dir, "server.log"), "start")
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` to simulate a crash)."""
        self.pg_ctl("-m", mode, "stop")

    def is_running(self) -> bool:
        """True while the server's postmaster is up (a test may have stopped it)."""
        return (Path(self.data_dir) / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its files."""
        subprocess.run(
            _as_postgres([postgres_bin("pg_ctl"), "-D", self.data_dir, "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """initdb a new cluster (trust auth on loopback), start it and create the `gatehouse` database."""
    parent = tempfile.mkdtemp(prefix="gatehouse-pg-")
    data_dir = os.path.join(parent, "data")
    if os.geteuid() == 0:
        shutil.chown(parent, "postgres", "postgres")
    subprocess.run(
        _as_postgres([postgres_bin("initdb"), "-D", data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster = PostgresCluster(port=free_port(), data_dir=data_dir)
    try:
        cluster.start()
        cluster.create_database("gatehouse")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


# The database backends the suites run on.
DATABASES = ["sqlite", "postgresql"]


def database_url_for(backend: str, request: pytest.FixtureRequest, workdir: Path, *, migrated: bool = False) -> str:
    """A fresh database on `backend`: a SQLite file, or a new database on the run's PostgreSQL cluster.

    Empty, or `migrated` to the latest revision (tests/support/migrated_databases.py)."""
    if backend == "sqlite":
        database = workdir / "gatehouse.db"
        return copy_sqlite_template(database) if migrated else f"sqlite:///{database}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(f"db_{uuid.uuid4().hex[:12]}", migrated=migrated)
