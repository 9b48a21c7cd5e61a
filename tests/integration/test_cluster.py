"""Gatehouse's session store on a Redis Cluster (3 primaries, 3 replicas; the queue on a Redis of its own).

Every script and multi-key command stays in one slot (the user's hash tag), so it runs on the node
serving that slot; scripts are loaded there on NOSCRIPT; MOVED and ASK during a live resharding, and a
primary's failover, are followed by the client.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sessions import keys
from tests.integration.pages import is_signed_out
from tests.integration.topology_journeys import (  # noqa: F401  (the shared journeys, collected and run here)
    REPLICA_WAIT,
    Topology,
    assert_no_one_signed_out_but,
    revoke_others,
    running_topology,
    served_again,
    test_back_channel_logout_by_sid_ends_only_that_provider_session,
    test_back_channel_logout_by_sub_ends_the_user_s_earlier_sessions,
    test_disable_and_deletion,
    test_parallel_requests_refresh_an_expired_token_once,
    test_sign_in_profile_edits_and_revocation,
    two_devices_each,
)
from tests.support.browserless import TIMEOUT, csrf_token
from tests.support.page_load import PageLoad
from tests.support.polling import wait_until
from tests.support.redis_topology import RedisClusterGroup

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    """One cluster for this module's tests."""
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster-redis")).start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, cluster: RedisClusterGroup) -> Iterator[Topology]:
    """A stack whose sessions live on the cluster (its queue on a Redis of its own), with a provider the tests drive."""
    with running_topology(
        "cluster",
        tmp_path_factory.mktemp("cluster"),
        redis_url=cluster.url,
        queue_on_own_redis=True,
        # Acknowledged writes wait for the slot's replica; the queue's own Redis has none.
        settings={**REPLICA_WAIT, "QUEUE_REDIS_WAIT_REPLICAS": 0},
    ) as topology:
        yield topology


def test_every_key_of_a_user_lives_in_one_slot(topology: Topology, cluster: RedisClusterGroup, subject: str) -> None:
    browser = requests.Session()
    topology.sign_in(browser, subject)
    topology.row(subject)
    user = keys.user_tag(topology.provider.issuer, subject)
    with cluster.client() as client:
        found = list(client.scan_iter(match=f"gh:{{{user}}}:*", target_nodes=client.ALL_NODES))
        assert len(found) >= 3  # the session, its tokens, the user's index and state
        assert {client.keyslot(key) for key in found} == {client.keyslot(keys.user_key(user))}


def test_a_write_no_replica_confirms_is_not_acknowledged_on_a_cluster(
    topology: Topology, cluster: RedisClusterGroup, subject: str
) -> None:
    base = topology.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    topology.sign_in(laptop, subject)
    topology.sign_in(phone, subject)
    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    with cluster.client() as client:
        slot = client.keyslot(keys.user_key(keys.user_tag(topology.provider.issuer, subject)))
    owner = next(node for node in cluster.primaries() if slot in cluster.slots_of(node))
    primary_of = {row.node_id: row.primary_id for row in cluster.view()}
    replica = next(node for node in cluster.replicas() if primary_of[node.node_id] == owner.node_id)
    assert replica.process is not None

    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        revoke = laptop.post(
            f"{base}/sessions/revoke-others", data={"csrf_token": csrf_token(devices.text)}, allow_redirects=False
        )
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)

    # The user's slot took the revocation, but its replica did not confirm it: not reported done.
    assert (revoke.status_code, revoke.headers.get("Retry-After")) == (503, "2")
    assert "dependency unavailable: WriteNotReplicated" in topology.stack.log("web0")


def test_a_live_resharding_and_a_failover_sign_no_one_out(
    topology: Topology, cluster: RedisClusterGroup, tmp_path: Path
) -> None:
    base = topology.stack.web_url
    browsers = two_devices_each(topology, [f"cluster-{index}-{tmp_path.name[-6:]}" for index in range(6)])
    revoker, revoked = next(iter(browsers.values()))
    source, target = cluster.primaries()[0], cluster.primaries()[1]

    with PageLoad(base, [browser for pair in browsers.values() for browser in pair if browser is not revoked]) as load:
        wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
        moving = cluster.reshard(2000, source, target)
        answer = revoke_others(topology, revoker)
        late = requests.Session()
        topology.sign_in(late, f"cluster-late-{tmp_path.name[-6:]}")
        resharded_in = cluster.wait_for_reshard(moving)
        primary_of = {row.node_id: row.primary_id for row in cluster.view()}
        replica = next(node for node in cluster.replicas() if primary_of[node.node_id] == target.node_id)
        failed_over_at = time.monotonic()
        failover_took = cluster.failover(replica)
        unserved_for = served_again(load, failed_over_at)

    print(
        f"\nCluster: 2000 slots moved in {resharded_in:.1f} s, failover in {failover_took:.1f} s, "
        f"pages unserved for {unserved_for:.1f} s after it; {dict(load.answers)}"
    )
    assert answer.status_code == 302
    assert set(load.answers) <= {"200", "503"}, load.answers
    assert_no_one_signed_out_but(topology, browsers, revoked)
    assert not is_signed_out(late, base), "a sign-in during the resharding was lost"


def test_a_sigkilled_primary_signs_no_one_out_on_a_cluster(
    topology: Topology, cluster: RedisClusterGroup, tmp_path: Path
) -> None:
    base = topology.stack.web_url
    browsers = two_devices_each(topology, [f"killed-{index}-{tmp_path.name[-6:]}" for index in range(6)])
    (first, (revoker, revoked)) = next(iter(browsers.items()))
    with cluster.client() as client:
        slot = client.keyslot(keys.user_key(keys.user_tag(topology.provider.issuer, first)))
    victim = next(node for node in cluster.primaries() if slot in cluster.slots_of(node))

    with PageLoad(base, [browser for pair in browsers.values() for browser in pair if browser is not revoked]) as load:
        wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
        # Acknowledged just before the kill, in the slot of the primary that dies.
        assert revoke_others(topology, revoker).status_code == 302
        killed_at = time.monotonic()
        cluster.kill(victim)
        cluster.wait_until_healthy(timeout=60)
        back_after = served_again(load, killed_at)

    print(f"\nCluster primary SIGKILLed: pages served again {back_after:.1f} s after; {dict(load.answers)}")
    assert set(load.answers) <= {"200", "503"}, load.answers
    assert_no_one_signed_out_but(topology, browsers, revoked)
    cluster.restart(victim)
