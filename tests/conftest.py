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


# Fixtures of these scopes start a deployment that a module's tests share (tests/integration/test_worker.py's
# worker_stack, tests/e2e/conftest.py's deployment on each database, a Redis Cluster, ...).
SHARED_SCOPES = ("module", "class", "package")


def deployment_group(item: pytest.Item) -> str | None:
    """The module (and the parameters of its shared fixtures) whose deployment `item` uses, if any.

    Tests of one group run on one pytest-xdist worker (`--dist loadgroup`), so a module's deployment starts
    once per parameter, as in a run without workers; different parameters (a module on SQLite, and on
    PostgreSQL) are different deployments and may run on different workers.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    shared = sorted(
        name
        for name in info.names_closure
        if (definitions := info.name2fixturedefs.get(name)) and definitions[-1].scope in SHARED_SCOPES
    )
    if not shared:
        return None
    indices = getattr(getattr(item, "callspec", None), "indices", {})
    # No "[" or "]": xdist takes the text after the last "@" of a node id as its group only if no "]" follows.
    parameters = ",".join(f"{name}={indices[name]}" for name in shared if name in indices)
    return f"{item.nodeid.split('::')[0]}:{parameters}" if parameters else item.nodeid.split("::")[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests sharing a module's deployment for pytest-xdist (before xdist reads the groups)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = deployment_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
