"""Fixtures of the security suite: one real Redis, hostile provider and app server for the run.

The servers start once; every test gets an empty Redis, an honest provider and a
freshly built Gatehouse app (its own Authlib metadata, key cache and rate
limiter) mounted on the same HTTP server, so tests cannot leak state into each
other yet the suite stays fast. After each test the fixture checks the global
invariants: no code, token or session id in the captured logs or in any page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.security.harness import Gatehouse, LogCapture, base_settings
from tests.security.hostile_provider import HostileProvider, Recorder
from tests.security.leaks import assert_no_leaks
from tests.security.servers import SwappableApp, ThreadedServer
from tests.security.tls import make_certificate, server_context
from tests.support.ports import free_port
from tests.support.stack import RedisServer


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole security suite (the test stack's kind, tests/support/stack.py)."""
    server = RedisServer("security", free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client to look into (and empty) the suite's Redis."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def hostile_server() -> Iterator[HostileProvider]:
    """The hostile provider, started once."""
    provider = HostileProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def recorder_server() -> Iterator[Recorder]:
    """A listener that must never be called (key URLs in forged headers point here)."""
    recorder = Recorder().start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="session")
def app_server() -> Iterator[tuple[ThreadedServer, SwappableApp]]:
    """One HTTP server whose app each test swaps in."""
    mount = SwappableApp()
    server = ThreadedServer(mount).start()
    yield server, mount
    server.stop()


@pytest.fixture
def provider(hostile_server: HostileProvider) -> HostileProvider:
    """The hostile provider, honest again and with empty logs."""
    hostile_server.reset()
    return hostile_server


@pytest.fixture
def recorder(recorder_server: Recorder) -> Recorder:
    """The must-not-be-called listener, with no hits yet."""
    recorder_server.hits.clear()
    return recorder_server


@pytest.fixture
def captured_logs() -> Iterator[LogCapture]:
    """Everything any logger emits during the test, at every level."""
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.setLevel(previous)
    root.removeHandler(capture)


@pytest.fixture
def gatehouse(
    app_server: tuple[ThreadedServer, SwappableApp],
    redis_client: redis.Redis,
    redis_url: str,
    provider: HostileProvider,
    captured_logs: LogCapture,
    tmp_path: Path,
) -> Iterator[Gatehouse]:
    """A fresh Gatehouse on an empty Redis; afterwards, no secret may show in logs or pages."""
    redis_client.flushdb()
    server, mount = app_server
    handle = Gatehouse(server, mount, redis_client, base_settings(redis_url, provider, tmp_path))
    yield handle
    handle.close()
    assert_no_leaks(provider, handle.browsers, captured_logs.text)


# Production mode over real TLS (test_production.py, test_browser_sign_out.py).


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that the app and the test browser trust."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_provider(certificate: tuple[Path, Path]) -> Iterator[HostileProvider]:
    """The hostile provider, served over https."""
    provider = HostileProvider(ssl_context=server_context(*certificate)).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def https_server(certificate: tuple[Path, Path]) -> Iterator[tuple[ThreadedServer, SwappableApp]]:
    """An https server for the app under test."""
    mount = SwappableApp()
    server = ThreadedServer(mount, ssl_context=server_context(*certificate)).start()
    yield server, mount
    server.stop()


@pytest.fixture
def production(
    certificate: tuple[Path, Path],
    https_provider: HostileProvider,
    https_server: tuple[ThreadedServer, SwappableApp],
    redis_client: redis.Redis,
    redis_url: str,
    captured_logs: LogCapture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gatehouse]:
    """Gatehouse with GATEHOUSE_ENV=production behind https, trusting the test certificate."""
    redis_client.flushdb()
    https_provider.reset()
    # The app's own calls to the provider (requests) trust the test certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    settings = {
        **base_settings(redis_url, https_provider, tmp_path),
        "GATEHOUSE_ENV": "production",
        "SECRET_KEY": "production-grade-secret-key-0123456789abcdef",
        "PUBLIC_URL": https_server[0].url,
    }
    server, mount = https_server
    handle = Gatehouse(server, mount, redis_client, settings, verify=str(certificate[0]))
    yield handle
    handle.close()
    assert_no_leaks(https_provider, handle.browsers, captured_logs.text)
