"""Gatehouse on a Redis that speaks TLS only (rediss://): sessions, the rate limiter, the queue and the worker
all connect over TLS, checking the server's certificate against REDIS_TLS_CA_FILE."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from redis import Redis

from app import create_app
from devstack.processes import free_port, start_redis, stop
from tests.integration.topology_journeys import Topology, provider_settings
from tests.security.hostile_provider import HostileProvider
from tests.security.tls import make_certificate
from tests.support.browserless import TIMEOUT
from tests.support.stack import start_stack

pytestmark = pytest.mark.integration


@dataclass
class TlsRedis:
    """A redis-server with its plain port off and TLS on `port`, and the CA that signed its certificate."""

    port: int
    ca_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis.from_url(self.url, ssl_ca_certs=str(self.ca_file), socket_timeout=5)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    """One TLS-only Redis for this module."""
    directory = tmp_path_factory.mktemp("redis-tls")
    cert, key = make_certificate(directory)
    port = free_port()
    tls = ["--tls-port", str(port), "--port", "0", "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    process = start_redis(port, data_dir=directory, extra=tls)
    try:
        yield TlsRedis(port, cert, process)
    finally:
        stop([process])


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, tls_redis: TlsRedis) -> Iterator[Topology]:
    """A stack whose sessions and queue are on the TLS Redis."""
    provider = HostileProvider().start()
    try:
        stack = start_stack(
            tmp_path_factory.mktemp("tls"),
            provider=None,
            redis_url=tls_redis.url,
            redis_client=tls_redis.client,
            settings={**provider_settings(provider), "REDIS_TLS_CA_FILE": str(tls_redis.ca_file)},
        )
    except BaseException:
        provider.stop()
        raise
    try:
        yield Topology("tls", stack, provider)
    finally:
        stack.stop()
        provider.stop()


def test_sign_in_pages_and_persistence_work_over_tls(topology: Topology, subject: str) -> None:
    browser = requests.Session()
    landed = topology.sign_in(browser, subject, next_path="/profile")
    assert landed.status_code == 200
    assert requests.get(f"{topology.stack.web_url}/readyz", timeout=TIMEOUT).json()["checks"] == {
        "redis": "ok",
        "queue": "ok",
        "database": "ok",
    }
    topology.row(subject)  # the worker took the job over TLS too


def test_a_server_whose_certificate_is_not_trusted_is_not_talked_to(topology: Topology) -> None:
    # The same settings without the CA file: the system's authorities do not know this certificate.
    settings = {**topology.stack.settings, "REDIS_TLS_CA_FILE": ""}
    untrusting = create_app(settings)
    answer = untrusting.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["redis"] == "down"
