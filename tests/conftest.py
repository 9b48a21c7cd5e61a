"""Fixtures every suite may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.downstream_api import DownstreamApi
from tests.support.postgres import PostgresCluster, start_cluster
from tests.support.recovery_times import RecoveryTimes


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run, started on first use; each user gets its own database."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def downstream_api() -> Iterator[DownstreamApi]:
    """A real local downstream API (for API_BASE_URL) whose answers the module's tests control."""
    server = DownstreamApi().start()
    try:
        yield server
    finally:
        server.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Register the run's plugins."""
    config.pluginmanager.register(RecoveryTimes(), "gatehouse-recovery-times")
