"""Fixtures for the unit suite: a signing key, a mocked provider, fakeredis-backed apps, signed-in clients."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from joserfc.jwk import RSAKey
from sqlalchemy import create_engine

import config
import connections
from app import create_app
from extensions import db
from tests.unit.helpers import RecordingRedis, add_lua_sha1hex, sign_in
from tests.unit.mock_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, MockProvider

AppFactory = Callable[..., Flask]


class TemplateCode(BytecodeCache):
    """Compiled templates kept in memory for every app this worker builds (each app has its own Jinja
    environment, so each would parse and compile the same templates again). Jinja checks every entry
    against the template's source before using it."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = TemplateCode()


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's or CI's environment out of every unit test's settings."""
    for name in (*config._ENV_SETTINGS, "GATEHOUSE_ENV"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    """The provider's RSA signing key (generated once: key generation is the slow part)."""
    return RSAKey.generate_key(2048, parameters={"kid": "provider-key-1", "use": "sig", "alg": "RS256"})


@pytest.fixture
def mocked_http() -> Iterator[responses.RequestsMock]:
    """Intercept every `requests` call; an unexpected URL fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def provider(mocked_http: responses.RequestsMock, signing_key: RSAKey) -> MockProvider:
    """The fake OpenID provider, served by `mocked_http`."""
    fake = MockProvider(key=signing_key)
    fake.register(mocked_http)
    return fake


@pytest.fixture
def redis_server() -> fakeredis.FakeServer:
    """One in-memory Redis server per test; `connected = False` simulates an outage."""
    server = fakeredis.FakeServer()
    add_lua_sha1hex(server)
    return server


@pytest.fixture
def fake_redis(redis_server: fakeredis.FakeServer) -> RecordingRedis:
    """The client the app uses for sessions and the queue (it records commands)."""
    return RecordingRedis(server=redis_server)


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the models' tables and no rows, made once by the same create_all as `db.create_all()`.

    Copying it is several times cheaper than running the DDL again (about 20 statements, each its own commit).
    """
    path = tmp_path_factory.mktemp("schema") / "gatehouse.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        db.metadata.create_all(engine)
    finally:
        engine.dispose()
    return path


@pytest.fixture
def make_app(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_redis: RecordingRedis,
    provider: MockProvider,
    empty_database: Path,
) -> AppFactory:
    """Build apps on fakeredis and a temporary SQLite database (tables created); keywords override settings."""
    monkeypatch.setattr(connections, "make_redis", lambda url, **options: fake_redis)
    database = tmp_path / "gatehouse.db"

    def build(*, create_tables: bool = True, **overrides: Any) -> Flask:
        settings: dict[str, Any] = {
            "GATEHOUSE_ENV": "testing",
            "SECRET_KEY": "unit-test-secret-key-that-is-long-enough",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "DATABASE_URL": f"sqlite:///{database}",
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **overrides,
        }
        app = create_app(settings)
        app.jinja_env.bytecode_cache = TEMPLATE_CODE
        if create_tables:
            fresh = app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}" and not database.exists()
            if fresh:
                # What create_all would make of a missing file; a second app on the same file keeps its rows.
                shutil.copyfile(empty_database, database)
            with app.app_context():
                if fresh:
                    db.engine.connect().close()  # the pool holds one connection, as after create_all
                else:
                    db.create_all()
        return app

    return build


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """A testing app with default settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser with no session yet."""
    return app.test_client()


@pytest.fixture
def signed_in(client: FlaskClient, provider: MockProvider) -> FlaskClient:
    """A browser where alice has signed in (and seen one page, so her CSRF token exists)."""
    landed = sign_in(client, provider, "alice")
    assert landed.status_code == 302, landed.get_data(as_text=True)
    assert client.get("/").status_code == 200
    return client
