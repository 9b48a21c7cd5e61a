"""Fixtures for the reliability suite: one PostgreSQL cluster, a fresh database per test, a stack per test,
measured timings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import StartStack, start_reliability_stack
from tests.support.postgres import PostgresCluster
from tests.support.recovery_times import RECOVERY_TIME
from tests.support.stack import Stack


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """DATABASE_URL of a new database on the shared cluster, at the latest migration."""
    return postgres_cluster.create_database(f"rel_{uuid.uuid4().hex[:12]}", migrated=True)


@pytest.fixture
def start_test_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartStack]:
    """Start the suite's deployment for this test: `start_test_stack("postgresql", workers=0, settings=...)`.

    The database is "sqlite" (a file in the test's folder) or "postgresql" (the test's `postgres_url`, a new
    database on the shared cluster); the other keywords are start_reliability_stack's. At the end every
    stack it started is stopped, and a cluster the test stopped is started again for the rest of the suite.
    """
    started: list[Stack] = []
    clusters: list[PostgresCluster] = []

    def start(database: str = "sqlite", **options: Any) -> Stack:
        url = None
        if database == "postgresql":
            url = request.getfixturevalue("postgres_url")
            clusters.append(request.getfixturevalue("postgres_cluster"))
        elif database != "sqlite":
            raise ValueError(f"database must be sqlite or postgresql (got {database!r})")
        stack = start_reliability_stack(tmp_path / f"stack{len(started)}", database_url=url, **options)
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.stop()
        if clusters and not clusters[0].is_running():
            clusters[0].start()  # the cluster is shared with the rest of the suite


@pytest.fixture
def timings(request: pytest.FixtureRequest) -> Iterator[dict[str, float]]:
    """Where a test records measured recovery times, printed at the end of the run (tests/conftest.py).

    They travel on the test's report (user properties), so under pytest-xdist they reach the controller too.
    """
    measured: dict[str, float] = {}
    yield measured
    request.node.user_properties.extend((f"{RECOVERY_TIME}{name}", seconds) for name, seconds in measured.items())
