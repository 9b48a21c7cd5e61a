"""Fixtures for the reliability suite: one PostgreSQL cluster, a fresh database per test, a stack per test,
measured timings."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import StartStack, start_reliability_stack
from tests.support.postgres import PostgresCluster
from tests.support.stack import Stack

TIMINGS = pytest.StashKey[dict[str, float]]()
TIMINGS_FILE = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability-timings.json"


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """DATABASE_URL of a new, empty database on the shared cluster."""
    return postgres_cluster.create_database(f"rel_{uuid.uuid4().hex[:12]}")


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
def timings(request: pytest.FixtureRequest) -> dict[str, float]:
    """Where tests record measured recovery times (printed at the end of the run)."""
    return request.config.stash.setdefault(TIMINGS, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the measured recovery times and keep them in test-artifacts/ for docs/reliability.md."""
    measured = config.stash.get(TIMINGS, {})
    if not measured:
        return
    terminalreporter.section("reliability: measured recovery times (seconds)")
    for name, seconds in sorted(measured.items()):
        terminalreporter.write_line(f"{name:<60} {seconds:8.2f}")
    if os.access(TIMINGS_FILE.parents[1], os.W_OK):
        TIMINGS_FILE.parent.mkdir(exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
