"""Fixtures every suite may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresCluster, start_cluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run, started on first use; each user gets its own database."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
