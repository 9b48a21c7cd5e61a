"""/healthz and /readyz: the process is up; which dependency, if any, is down."""

from __future__ import annotations

from pathlib import Path

import fakeredis
from flask.testing import FlaskClient

from tests.unit.conftest import AppFactory


def test_ready_when_every_dependency_answers(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok", "checks": {"redis": "ok", "queue": "ok", "database": "ok"}}


def test_an_unreachable_database_is_named(make_app: AppFactory, tmp_path: Path) -> None:
    # SQLite cannot open a file in a folder that does not exist: every connection fails.
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'gone.db'}", create_tables=False)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unavailable", "checks": {"redis": "ok", "queue": "ok", "database": "down"}}


def test_health_answers_without_redis(client: FlaskClient, redis_server: fakeredis.FakeServer) -> None:
    redis_server.connected = False
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["checks"]["redis"] == "down"
