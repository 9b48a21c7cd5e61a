"""Gatehouse on a Redis that speaks TLS only: sessions, the rate limiter, the queue and the worker all connect over
TLS, checking the servers' certificates against REDIS_TLS_CA_FILE.

Three topologies: one server (rediss://); a Sentinel group (rediss+sentinel://: the Sentinels, the data nodes
and replication on TLS only, sessions and the queue on it); a 3+3 Cluster (rediss+cluster://: the nodes and
the cluster bus on TLS only; the queue on a plain Redis of the stack's own, as RQ cannot run on a cluster)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from redis import Redis

from app import create_app
from devstack.processes import start_redis, stop
from tests.integration.pages import is_signed_in_as, is_signed_out
from tests.integration.topology_journeys import REPLICA_WAIT, Topology, running_topology
from tests.security.tls import make_certificate
from tests.support.browserless import TIMEOUT, csrf_token
from tests.support.ports import free_port
from tests.support.redis_topology import RedisClusterGroup, SentinelGroup, TlsFiles

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
    with running_topology(
        "tls",
        tmp_path_factory.mktemp("tls"),
        redis_url=tls_redis.url,
        redis_client=tls_redis.client,
        settings={"REDIS_TLS_CA_FILE": str(tls_redis.ca_file)},
    ) as topology:
        yield topology


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


# ---- Sentinel and Cluster over TLS -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One self-signed certificate (its own CA) every node and Sentinel of this module serves."""
    cert, key = make_certificate(tmp_path_factory.mktemp("redis-tls-certificate"))
    return TlsFiles(cert=cert, key=key, ca=cert)


@pytest.fixture(scope="module")
def tls_sentinel(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[SentinelGroup]:
    """A Sentinel group (1 primary, 2 replicas, 3 Sentinels; down-after 1 s) on TLS only."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel-redis-tls"), down_after_ms=1000, tls=tls_files).start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def sentinel_topology(
    tmp_path_factory: pytest.TempPathFactory, tls_sentinel: SentinelGroup, tls_files: TlsFiles
) -> Iterator[Topology]:
    """A stack whose sessions and queue are on the TLS Sentinel group; acknowledged writes wait for a replica."""
    with running_topology(
        "sentinel-tls",
        tmp_path_factory.mktemp("sentinel-tls"),
        redis_url=tls_sentinel.url,
        redis_client=lambda: tls_sentinel.client_for(tls_sentinel.primary()),
        settings={**REPLICA_WAIT, "REDIS_TLS_CA_FILE": str(tls_files.ca)},
    ) as topology:
        yield topology


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[RedisClusterGroup]:
    """A 3+3 Redis Cluster on TLS only, its bus too."""
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster-redis-tls"), tls=tls_files).start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def cluster_topology(
    tmp_path_factory: pytest.TempPathFactory, tls_cluster: RedisClusterGroup, tls_files: TlsFiles
) -> Iterator[Topology]:
    """A stack whose sessions are on the TLS cluster (the slot's replica confirms each acknowledged write), its
    queue on a plain Redis of its own."""
    with running_topology(
        "cluster-tls",
        tmp_path_factory.mktemp("cluster-tls"),
        redis_url=tls_cluster.url,
        queue_on_own_redis=True,
        settings={
            **REPLICA_WAIT,
            "QUEUE_REDIS_WAIT_REPLICAS": 0,
            "REDIS_TLS_CA_FILE": str(tls_files.ca),
        },
    ) as topology:
        yield topology


def sign_in_revoke_and_persist(topology: Topology, subject: str) -> None:
    """Sign in on two browsers, open a page, revoke the other session, see the worker's row and /readyz all ok;
    an app without the CA file finds the session store down."""
    base = topology.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    landed = topology.sign_in(laptop, subject, next_path="/profile")
    assert landed.status_code == 200
    topology.sign_in(phone, subject)
    name = subject.title()  # the provider's `name` claim
    assert is_signed_in_as(phone, base, name)

    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    assert devices.status_code == 200
    revoked = laptop.post(
        f"{base}/sessions/revoke-others",
        data={"csrf_token": csrf_token(devices.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 302
    assert is_signed_out(phone, base)
    assert is_signed_in_as(laptop, base, name)

    topology.row(subject)  # the worker took the sign-in's job
    assert requests.get(f"{base}/readyz", timeout=TIMEOUT).json()["checks"] == {
        "redis": "ok",
        "queue": "ok",
        "database": "ok",
    }

    # Certificates are checked on this topology too: without the CA file the same settings reach no server, and
    # say so (a 503) each time they are asked.
    untrusting = create_app({**topology.stack.settings, "REDIS_TLS_CA_FILE": ""})
    for _ in range(2):
        answer = untrusting.test_client().get("/readyz")
        assert (answer.status_code, answer.get_json()["checks"]["redis"]) == (503, "down")


def test_sign_in_revocation_and_persistence_work_on_sentinel_over_tls(
    sentinel_topology: Topology, tls_sentinel: SentinelGroup, subject: str
) -> None:
    settings = sentinel_topology.stack.settings
    assert settings["REDIS_URL"] == settings["QUEUE_REDIS_URL"] == tls_sentinel.url
    assert tls_sentinel.url.startswith("rediss+sentinel://")
    sign_in_revoke_and_persist(sentinel_topology, subject)


def test_sign_in_revocation_and_persistence_work_on_a_cluster_over_tls(
    cluster_topology: Topology, tls_cluster: RedisClusterGroup, subject: str
) -> None:
    assert cluster_topology.stack.settings["REDIS_URL"] == tls_cluster.url
    assert tls_cluster.url.startswith("rediss+cluster://")
    sign_in_revoke_and_persist(cluster_topology, subject)
