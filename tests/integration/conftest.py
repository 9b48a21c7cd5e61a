"""Fixtures for the integration suite: a shared real stack, a fresh browser and a fresh user per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support.postgres import DATABASES, database_url_for
from tests.support.stack import Stack, start_stack


@pytest.fixture(scope="session", params=DATABASES)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One real deployment (Redis, provider, worker, gunicorn) shared by tests that do not disturb it,
    once on SQLite and once on PostgreSQL: every test using it runs against both."""
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    database_url = database_url_for(request.param, request, workdir, migrated=True)
    running = start_stack(workdir, database_url=database_url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    """A browser with an empty cookie jar."""
    with requests.Session() as http:
        yield http


@pytest.fixture
def subject() -> str:
    """A user id no other test signs in with, so tests sharing a stack never see each other's data."""
    return f"user-{uuid.uuid4().hex[:12]}"
