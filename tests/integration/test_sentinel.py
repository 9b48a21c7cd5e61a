"""Gatehouse on a Redis Sentinel group (1 primary, 2 replicas, 3 Sentinels; down-after 1 s): sessions, the
queue and the worker all reach the primary through Sentinel, and a SIGKILLed primary signs no one out.

The stack runs with REDIS_WAIT_REPLICAS=1: every acknowledged write (sign-in, revocation, disable,
deletion, a saved profile, a queued job) waited for a replica, so the replica Sentinel promotes has it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from audit.events import build_event
from audit.jobs import store_audit_event
from connections import WriteNotReplicated
from jobs.outbox import outbox_count
from jobs.queues import enqueue, put_on_queue
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
from tests.support.redis_topology import SentinelGroup

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """One Sentinel group for this module's tests."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel-redis")).start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, sentinel: SentinelGroup) -> Iterator[Topology]:
    """A stack (a web process, a worker) on the group, signing in through a provider whose keys the tests hold."""
    with running_topology(
        "sentinel",
        tmp_path_factory.mktemp("sentinel"),
        redis_url=sentinel.url,
        redis_client=lambda: sentinel.client_for(sentinel.primary()),
        settings=REPLICA_WAIT,
    ) as topology:
        yield topology


@contextmanager
def replicas_frozen(group: SentinelGroup) -> Iterator[None]:
    """SIGSTOP every replica (replication stalls, the primary keeps serving), SIGCONT them afterwards."""
    frozen = [node.process for node in group.replicas() if node.process is not None]
    for process in frozen:
        os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for process in frozen:
            os.kill(process.pid, signal.SIGCONT)


def test_a_write_no_replica_confirms_is_not_acknowledged(
    topology: Topology, sentinel: SentinelGroup, subject: str
) -> None:
    base = topology.stack.web_url
    laptop, phone, newcomer = requests.Session(), requests.Session(), requests.Session()
    topology.sign_in(laptop, subject)
    topology.sign_in(phone, subject)
    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    start = newcomer.get(f"{base}/login", allow_redirects=False, timeout=TIMEOUT)

    with replicas_frozen(sentinel):
        revoke = laptop.post(
            f"{base}/sessions/revoke-others",
            data={"csrf_token": csrf_token(devices.text)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        answer = newcomer.get(start.headers["Location"], params={"login_as": f"{subject}-new"}, allow_redirects=False)
        callback = newcomer.get(answer.headers["Location"], allow_redirects=False, timeout=TIMEOUT)

    # Redis took both writes, but no replica confirmed them within REDIS_WAIT_TIMEOUT_MS: a failover now
    # could undo them, so neither is reported done.
    assert (revoke.status_code, revoke.headers.get("Retry-After")) == (503, "2")
    assert callback.status_code == 503
    assert "gatehouse_session" not in callback.cookies
    assert is_signed_out(newcomer, base)
    # Refused by the replica count WAIT answered, not by a socket timeout.
    assert "dependency unavailable: WriteNotReplicated" in topology.stack.log("web0")


def test_a_job_no_replica_confirms_is_kept_in_the_outbox_too_and_stored_once(
    topology: Topology, sentinel: SentinelGroup, subject: str
) -> None:
    """QUEUE_REDIS_WAIT_REPLICAS (here from REDIS_WAIT_REPLICAS=1): WAIT follows the job's own writes on
    their connection, so with every replica frozen the job is not acknowledged and goes to the outbox as
    well; once both copies have run, the event is stored once."""
    with topology.stack.context() as app, app.test_request_context("/"):
        event = build_event("sign_out", "user", issuer=topology.provider.issuer, subject=subject)
        assert put_on_queue(store_audit_event, event).id  # replicas running: acknowledged
        late = build_event("sign_out", "user", issuer=topology.provider.issuer, subject=f"{subject}-frozen")
        with replicas_frozen(sentinel):
            with pytest.raises(WriteNotReplicated, match="0 of 1 replicas"):
                put_on_queue(store_audit_event, late)
            assert enqueue(store_audit_event, late) is None  # not acknowledged: kept in the outbox

    def stored(who: str) -> list[dict[str, object]]:
        listed = topology.stack.flask("audit", "list", "--json").stdout.splitlines()
        return [row for row in map(json.loads, listed) if row["subject"] == who]

    wait_until(lambda: stored(f"{subject}-frozen") and stored(subject), timeout=30, what="both events stored")
    with topology.stack.context():
        wait_until(lambda: outbox_count() == 0, timeout=30, what="the outbox drained")
    # Queued three times (twice on the primary, once from the outbox), stored once.
    assert [row["repeats"] for row in stored(f"{subject}-frozen")] == [1]


def test_a_sigkilled_primary_signs_no_one_out_and_undoes_no_revocation(
    topology: Topology, sentinel: SentinelGroup, tmp_path: Path
) -> None:
    base = topology.stack.web_url
    browsers = two_devices_each(topology, [f"failover-{index}-{tmp_path.name[-6:]}" for index in range(4)])
    revoker, revoked = next(iter(browsers.values()))

    with PageLoad(base, [browser for pair in browsers.values() for browser in pair if browser is not revoked]) as load:
        wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
        # Acknowledged just before the kill: a new sign-in, and a revocation of another device.
        late = requests.Session()
        topology.sign_in(late, "failover-late-" + tmp_path.name[-6:])
        assert revoke_others(topology, revoker).status_code == 302
        killed_at = time.monotonic()
        old = sentinel.kill_primary()
        # No primary yet: the readiness check says so (Sentinel still names the dead one).
        not_ready = requests.get(f"{base}/readyz", timeout=TIMEOUT)
        sentinel.wait_for_new_primary(old)
        back_after = served_again(load, killed_at)

    print(f"\nSentinel failover (down-after 1 s): served again {back_after:.1f} s after SIGKILL; {dict(load.answers)}")
    assert set(load.answers) <= {"200", "503"}, load.answers
    assert (not_ready.status_code, not_ready.json()["checks"]["redis"]) == (503, "down")
    assert requests.get(f"{base}/readyz", timeout=TIMEOUT).status_code == 200
    assert_no_one_signed_out_but(topology, browsers, revoked)
    assert not is_signed_out(late, base), "a sign-in acknowledged just before the failover was lost"
    sentinel.restart(old)
