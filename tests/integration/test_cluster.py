"""Gatehouse's session store on a Redis Cluster (3 primaries, 3 replicas; the queue on a Redis of its own).

Every script and multi-key command stays in one slot (the user's hash tag), so it runs on the node
serving that slot; scripts are loaded there on NOSCRIPT; MOVED and ASK during a live resharding, and a
primary's failover, are followed by the client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sessions import keys
from tests.integration.pages import form_values, is_signed_in_as, is_signed_out
from tests.integration.persisted import user_rows
from tests.support.browserless import TIMEOUT, csrf_token, sign_in
from tests.support.page_load import PageLoad
from tests.support.polling import wait_until
from tests.support.redis_topology import RedisClusterGroup
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration


@dataclass
class ClusterStack:
    """The cluster and the Gatehouse deployment whose sessions live on it."""

    cluster: RedisClusterGroup
    stack: Stack


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    """One cluster and one stack on it (a web process with two workers, a worker), shared by this module."""
    workdir = tmp_path_factory.mktemp("cluster")
    cluster = RedisClusterGroup(workdir / "redis").start()
    try:
        stack = start_stack(workdir, redis_url=cluster.url, queue_on_own_redis=True)
    except BaseException:
        cluster.stop()
        raise
    try:
        yield ClusterStack(cluster, stack)
    finally:
        stack.stop()
        cluster.stop()


def row_of(stack: Stack, subject: str, **expected: object) -> dict[str, object]:
    """Wait for the user's row (with `expected` values) written by the worker."""

    def matching() -> dict[str, object] | None:
        rows = user_rows(stack, subject)
        return rows[0] if rows and all(rows[0].get(name) == value for name, value in expected.items()) else None

    return wait_until(matching, timeout=30, what=f"the row of {subject} with {expected}")


def test_sign_in_profile_edits_and_revocation_work_on_a_cluster(on_cluster: ClusterStack, subject: str) -> None:
    base = on_cluster.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    page = sign_in(laptop, base, subject, next_path="/profile")
    sign_in(phone, base, subject)

    fields = form_values(page.text) | {"display_name": "Clustered"}
    saved = laptop.post(f"{base}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert saved.status_code == 302
    assert is_signed_in_as(phone, base, "Clustered")
    row_of(on_cluster.stack, subject, display_name="Clustered")

    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    assert devices.status_code == 200
    revoked = laptop.post(
        f"{base}/sessions/revoke-others", data={"csrf_token": csrf_token(devices.text)}, allow_redirects=False
    )
    assert revoked.status_code == 302
    assert is_signed_out(phone, base)
    assert is_signed_in_as(laptop, base, "Clustered")

    # Every key of the user is in the one slot their hash tag names.
    user = keys.user_tag(on_cluster.stack.provider_url, subject)
    with on_cluster.cluster.client() as client:
        slot = client.keyslot(keys.user_key(user))
        found = [key for key in client.scan_iter(match=f"gh:{{{user}}}:*", target_nodes=client.ALL_NODES)]
        assert found
        assert {client.keyslot(key) for key in found} == {slot}


def test_disable_and_deletion_work_on_a_cluster(on_cluster: ClusterStack, subject: str) -> None:
    stack = on_cluster.stack
    browser, other = requests.Session(), requests.Session()
    sign_in(browser, stack.web_url, subject)
    row_of(stack, subject)

    stack.flask("users", "disable", subject, "--issuer", stack.provider_url)
    assert is_signed_out(browser, stack.web_url)
    stack.flask("users", "enable", subject, "--issuer", stack.provider_url)
    row_of(stack, subject, disabled=False)

    sign_in(other, stack.web_url, subject)
    confirm = other.get(f"{stack.web_url}/account/delete", timeout=TIMEOUT)
    deleted = other.post(
        f"{stack.web_url}/account/delete", data={"csrf_token": csrf_token(confirm.text)}, allow_redirects=False
    )
    assert deleted.status_code == 303
    assert is_signed_out(other, stack.web_url)
    wait_until(lambda: not user_rows(stack, subject), timeout=30, what="the deleted row gone")


def test_a_live_resharding_and_a_failover_sign_no_one_out(on_cluster: ClusterStack, tmp_path: Path) -> None:
    cluster, stack = on_cluster.cluster, on_cluster.stack
    base = stack.web_url
    subjects = [f"cluster-{index}-{tmp_path.name[-6:]}" for index in range(6)]
    browsers = {subject: [requests.Session(), requests.Session()] for subject in subjects}
    for subject, (first, second) in browsers.items():
        sign_in(first, base, subject)
        sign_in(second, base, subject)
    revoker, revoked = browsers[subjects[0]]
    source, target = cluster.primaries()[0], cluster.primaries()[1]

    with PageLoad(base, [browser for pair in browsers.values() for browser in pair if browser is not revoked]) as load:
        wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
        moving = cluster.reshard(2000, source, target)
        devices = revoker.get(f"{base}/sessions", timeout=TIMEOUT)
        answer = revoker.post(
            f"{base}/sessions/revoke-others", data={"csrf_token": csrf_token(devices.text)}, allow_redirects=False
        )
        late = requests.Session()
        sign_in(late, base, f"cluster-late-{tmp_path.name[-6:]}")
        resharded_in = cluster.wait_for_reshard(moving)
        primary_of = {row.node_id: row.primary_id for row in cluster.view()}
        replica = next(node for node in cluster.replicas() if primary_of[node.node_id] == target.node_id)
        failed_over_at = time.monotonic()
        failover_took = cluster.failover(replica)
        wait_until(
            lambda: time.monotonic() - max(load.last_unserved, failed_over_at) > 3,
            timeout=60,
            what="pages served for 3 s after the failover",
        )
        unserved_for = max(load.last_unserved, failed_over_at) - failed_over_at

    print(
        f"\nCluster: 2000 slots moved in {resharded_in:.1f} s, failover in {failover_took:.1f} s, "
        f"pages unserved for {unserved_for:.1f} s after it; {dict(load.answers)}"
    )
    assert answer.status_code == 302
    assert set(load.answers) <= {"200", "503"}, load.answers
    for subject, pair in browsers.items():
        for browser in pair:
            if browser is revoked:
                assert is_signed_out(browser, base), "a revocation during the resharding was undone"
            else:
                assert not is_signed_out(browser, base), f"{subject} was signed out by the resharding or failover"
    assert not is_signed_out(late, base), "a sign-in during the resharding was lost"
    for subject in subjects:
        row_of(stack, subject)
