"""Gatehouse on a Redis Sentinel group (1 primary, 2 replicas, 3 Sentinels; down-after 1 s): sessions, the
queue and the worker all reach the primary through Sentinel, and a SIGKILLed primary signs no one out.

The stack runs with REDIS_WAIT_REPLICAS=1: every acknowledged write (sign-in, revocation, disable,
deletion, a saved profile, a queued job) waited for a replica, so the replica Sentinel promotes has it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.pages import form_values, is_signed_in_as, is_signed_out
from tests.integration.persisted import user_rows, wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, sign_in
from tests.support.page_load import PageLoad
from tests.support.polling import wait_until
from tests.support.redis_topology import SentinelGroup
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration


@dataclass
class SentinelStack:
    """The group and the Gatehouse deployment running on it."""

    group: SentinelGroup
    stack: Stack


@pytest.fixture(scope="module")
def on_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelStack]:
    """One Sentinel group and one stack on it (a web process and a worker), shared by this module's tests."""
    workdir = tmp_path_factory.mktemp("sentinel")
    group = SentinelGroup(workdir / "redis").start()
    try:
        stack = start_stack(
            workdir,
            redis_url=group.url,
            redis_client=lambda: group.client_for(group.primary()),
            settings={"REDIS_WAIT_REPLICAS": 1, "REDIS_WAIT_TIMEOUT_MS": 300},
        )
    except BaseException:
        group.stop()
        raise
    try:
        yield SentinelStack(group, stack)
    finally:
        stack.stop()
        group.stop()


def new_browser() -> requests.Session:
    return requests.Session()


def test_sign_in_profile_edits_and_revocation_work_through_sentinel(on_sentinel: SentinelStack, subject: str) -> None:
    base = on_sentinel.stack.web_url
    laptop, phone = new_browser(), new_browser()
    page = sign_in(laptop, base, subject, next_path="/profile")
    sign_in(phone, base, subject)

    fields = form_values(page.text) | {"display_name": "Seen Everywhere"}
    saved = laptop.post(f"{base}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert saved.status_code == 302
    assert is_signed_in_as(phone, base, "Seen Everywhere")

    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    revoked = laptop.post(
        f"{base}/sessions/revoke-others",
        data={"csrf_token": csrf_token(devices.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 302
    assert is_signed_out(phone, base)
    assert is_signed_in_as(laptop, base, "Seen Everywhere")
    wait_for_row(on_sentinel.stack, subject, display_name="Seen Everywhere")


def test_disable_and_deletion_work_through_sentinel(on_sentinel: SentinelStack, subject: str) -> None:
    stack = on_sentinel.stack
    browser, other = new_browser(), new_browser()
    sign_in(browser, stack.web_url, subject)
    wait_for_row(stack, subject)

    stack.flask("users", "disable", subject, "--issuer", stack.provider_url)
    assert is_signed_out(browser, stack.web_url)
    stack.flask("users", "enable", subject, "--issuer", stack.provider_url)
    wait_for_row(stack, subject, disabled=False)

    sign_in(other, stack.web_url, subject)
    confirm = other.get(f"{stack.web_url}/account/delete", timeout=TIMEOUT)
    deleted = other.post(
        f"{stack.web_url}/account/delete",
        data={"csrf_token": csrf_token(confirm.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert deleted.status_code == 303
    assert is_signed_out(other, stack.web_url)
    wait_until(lambda: not user_rows(stack, subject), timeout=30, what="the deleted row gone")


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


def test_a_write_no_replica_confirms_is_not_acknowledged(on_sentinel: SentinelStack, subject: str) -> None:
    base = on_sentinel.stack.web_url
    laptop, phone, newcomer = new_browser(), new_browser(), new_browser()
    sign_in(laptop, base, subject)
    sign_in(phone, base, subject)
    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    start = newcomer.get(f"{base}/login", allow_redirects=False, timeout=TIMEOUT)

    with replicas_frozen(on_sentinel.group):
        revoke = laptop.post(
            f"{base}/sessions/revoke-others",
            data={"csrf_token": csrf_token(devices.text)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        consent = newcomer.post(start.headers["Location"], data={"sub": f"{subject}-new"}, allow_redirects=False)
        callback = newcomer.get(consent.headers["Location"], allow_redirects=False, timeout=TIMEOUT)

    # Redis took both writes, but no replica confirmed them within REDIS_WAIT_TIMEOUT_MS: a failover now
    # could undo them, so neither is reported done.
    assert (revoke.status_code, revoke.headers.get("Retry-After")) == (503, "2")
    assert callback.status_code == 503
    assert "gatehouse_session" not in callback.cookies
    assert is_signed_out(newcomer, base)
    # Refused by the replica count WAIT answered, not by a socket timeout.
    assert "dependency unavailable: WriteNotReplicated" in on_sentinel.stack.log("web0")


def test_a_sigkilled_primary_signs_no_one_out_and_undoes_no_revocation(
    on_sentinel: SentinelStack, tmp_path: Path
) -> None:
    group, stack = on_sentinel.group, on_sentinel.stack
    base = stack.web_url
    subjects = [f"failover-{index}-{tmp_path.name[-6:]}" for index in range(4)]
    browsers = {subject: [new_browser(), new_browser()] for subject in subjects}
    for subject, (first, second) in browsers.items():
        sign_in(first, base, subject)
        sign_in(second, base, subject)
    revoker, revoked = browsers[subjects[0]]

    with PageLoad(base, [browser for pair in browsers.values() for browser in pair if browser is not revoked]) as load:
        wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
        # Acknowledged just before the kill: a new sign-in, and a revocation of another device.
        late = new_browser()
        sign_in(late, base, "failover-late-" + tmp_path.name[-6:])
        devices = revoker.get(f"{base}/sessions", timeout=TIMEOUT)
        answer = revoker.post(
            f"{base}/sessions/revoke-others",
            data={"csrf_token": csrf_token(devices.text)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert answer.status_code == 302
        killed_at = time.monotonic()
        old = group.kill_primary()
        group.wait_for_new_primary(old)
        # Served again: several seconds of nothing but 200s.
        wait_until(
            lambda: load.answers["200"] > 0 and time.monotonic() - max(load.last_unserved, killed_at) > 3,
            timeout=60,
            what="pages served again after the failover",
        )
        back_after = max(load.last_unserved, killed_at) - killed_at

    print(f"\nSentinel failover (down-after 1 s): served again {back_after:.1f} s after SIGKILL; {dict(load.answers)}")
    assert set(load.answers) <= {"200", "503"}, load.answers
    for subject, pair in browsers.items():
        for browser in pair:
            if browser is revoked:
                assert is_signed_out(browser, base), "a revocation acknowledged before the failover was undone"
            else:
                assert not is_signed_out(browser, base), f"{subject} was signed out by the failover"
    assert not is_signed_out(late, base), "a sign-in acknowledged just before the failover was lost"
    for subject in subjects:
        wait_for_row(stack, subject, timeout=60)
    group.restart(old)
