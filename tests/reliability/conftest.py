"""Fixtures for the reliability suite: one PostgreSQL cluster, a fresh database per test, measured timings."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster

TIMINGS = pytest.StashKey[dict[str, float]]()
TIMINGS_FILE = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability-timings.json"


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """DATABASE_URL of a new, empty database on the shared cluster."""
    return postgres_cluster.create_database(f"rel_{uuid.uuid4().hex[:12]}")


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
