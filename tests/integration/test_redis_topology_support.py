"""tests/support/redis_topology.py starts real Sentinel and Cluster topologies that survive what they are for:
a SIGKILLed primary, a reshard under load, a manual failover."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from tests.support.polling import wait_until
from tests.support.redis_topology import RedisClusterGroup, SentinelGroup

pytestmark = pytest.mark.integration

DATA_PASSWORD = "data-secret"
SENTINEL_PASSWORD = "sentinel-secret"
CLUSTER_PASSWORD = "cluster-secret"


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """One Sentinel group for the module (default timings), with passwords on the data nodes and the Sentinels."""
    group = SentinelGroup(
        tmp_path_factory.mktemp("sentinel"), password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD
    )
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    """One six-node cluster for the module, password-protected."""
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster"), password=CLUSTER_PASSWORD)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def test_sentinel_failover_keeps_data_and_the_killed_primary_rejoins_as_a_replica(
    sentinel_group: SentinelGroup, record_property: pytest.RecordProperty
) -> None:
    with sentinel_group.sentinel_client() as sentinel, sentinel.master_for(sentinel_group.service) as client:
        client.set("before-failover", "written")
        # Replication is asynchronous: without this a SIGKILL may legitimately lose the write.
        assert client.wait(2, 5000) == 2
        assert client.get("before-failover") == b"written"

    old = sentinel_group.kill_primary()
    seconds = sentinel_group.wait_for_new_primary(old, timeout=30)
    print(f"SIGKILLed primary replaced after {seconds:.2f}s (down-after {sentinel_group.down_after_ms} ms)")
    record_property("seconds_to_new_primary", round(seconds, 2))
    new = sentinel_group.primary()
    assert new is not old
    assert sentinel_group.role(new) == "master"

    # A fresh client asks the Sentinels again and lands on the new primary.
    with sentinel_group.sentinel_client() as sentinel, sentinel.master_for(sentinel_group.service) as client:
        assert client.get("before-failover") == b"written"
        client.set("after-failover", "also written")
        assert client.get("after-failover") == b"also written"

    sentinel_group.restart(old)
    assert sentinel_group.role(old) == "slave"
    assert sentinel_group.primary() is new
    with sentinel_group.client_for(old) as replica:
        wait_until(lambda: replica.get("after-failover") == b"also written", what="the write to reach the old primary")


def test_sentinel_url_serves_a_limits_storage(sentinel_group: SentinelGroup) -> None:
    storage = storage_from_string(sentinel_group.url, sentinel_kwargs={"password": SENTINEL_PASSWORD})
    try:
        assert storage.check()
        limiter = FixedWindowRateLimiter(storage)
        limit = parse("2/minute")
        assert [limiter.hit(limit, "topology-test") for _ in range(3)] == [True, True, False]
    finally:
        storage.storage.close()
        storage.storage_slave.close()
        for connection in storage.sentinel.sentinels:
            connection.close()


def test_cluster_reshard_under_load_keeps_every_key(cluster_group: RedisClusterGroup) -> None:
    keys = [f"before:{index}" for index in range(2000)]
    with closing(cluster_group.client()) as client:
        for key in keys:
            client.set(key, key)
        source, target = cluster_group.primaries()[:2]
        slots = {node: len(cluster_group.slots_of(node)) for node in (source, target)}
        owned = cluster_group.slot_owner_counts(keys)

        process = cluster_group.reshard(1000, source, target)
        # Load while the slots move: redis-py follows the ASK/MOVED redirects the migration causes.
        written = []
        while process.poll() is None:
            key = f"during:{len(written)}"
            client.set(key, key)
            assert client.get(key) == key.encode()
            written.append(key)
        cluster_group.wait_for_reshard(process, timeout=60)
        assert written, "the reshard ended before any load ran"

    assert len(cluster_group.slots_of(source)) == slots[source] - 1000
    assert len(cluster_group.slots_of(target)) == slots[target] + 1000
    now_owned = cluster_group.slot_owner_counts(keys)
    assert now_owned[source.node_id] < owned[source.node_id]
    assert now_owned[target.node_id] - owned[target.node_id] == owned[source.node_id] - now_owned[source.node_id]
    # A fresh client (a fresh slot map) reads every key, moved or not.
    with closing(cluster_group.client()) as client:
        missing = [key for key in [*keys, *written] if client.get(key) != key.encode()]
    assert not missing, f"{len(missing)} keys lost, e.g. {missing[:5]}"


def test_cluster_failover_promotes_the_replica(cluster_group: RedisClusterGroup) -> None:
    replica = cluster_group.replicas()[0]
    primary_id = next(row.primary_id for row in cluster_group.view() if row.node_id == replica.node_id)

    seconds = cluster_group.failover(replica, timeout=30)
    print(f"cluster manual failover took {seconds:.2f}s")

    assert replica in cluster_group.primaries()
    assert primary_id in {node.node_id for node in cluster_group.replicas()}
    with closing(cluster_group.client()) as client:
        client.set("after-cluster-failover", "ok")
        assert client.get("after-cluster-failover") == b"ok"


def test_cluster_url_serves_a_limits_storage(cluster_group: RedisClusterGroup) -> None:
    storage = storage_from_string(cluster_group.url)
    try:
        assert storage.check()
        limiter = FixedWindowRateLimiter(storage)
        limit = parse("2/minute")
        assert [limiter.hit(limit, "topology-test") for _ in range(3)] == [True, True, False]
    finally:
        storage.storage.close()
