"""The journeys every Redis topology must carry, written once and run on each (one server, Sentinel, Cluster).

A topology's test module defines a module-scoped `topology` fixture (a stack on that Redis, with a
provider whose keys the tests hold) and imports these test functions, which pytest then collects
there: tests/integration/test_standalone_topology.py, test_sentinel.py and test_cluster.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.integration.pages import form_values, is_signed_in_as, is_signed_out
from tests.security.hostile_provider import CLIENT_ID, CLIENT_SECRET, HostileProvider
from tests.support import browserless
from tests.support.browserless import TIMEOUT, csrf_token
from tests.support.page_load import PageLoad
from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

# Acknowledged writes wait for a replica (REDIS_WAIT_REPLICAS=1) this long at most. The topologies run several Redis
# servers beside the stack on two busy cores: a Cluster's replica once took more than 300 ms to confirm a sign-in.
# The WAIT must be shorter than the socket timeout (config.py).
REPLICA_WAIT = {"REDIS_WAIT_REPLICAS": 1, "REDIS_WAIT_TIMEOUT_MS": 1500, "REDIS_SOCKET_TIMEOUT": 2.0}


@dataclass
class Topology:
    """A stack on one kind of Redis, and the provider it signs in through."""

    name: str
    stack: Stack
    provider: HostileProvider

    def sign_in(self, browser: requests.Session, subject: str, next_path: str = "/") -> requests.Response:
        """Sign `subject` in through the provider (it signs in whoever the authorize URL names)."""

        def provider_pages(http: requests.Session, base_url: str, authorize_url: str, login: str) -> requests.Response:
            return http.get(authorize_url, params={"login_as": login}, timeout=TIMEOUT)

        landed = browserless.sign_in(browser, self.stack.web_url, subject, next_path, through=provider_pages)
        # Said here, not later as a redirect to sign-in: a refused sign-in (a 503 under load) is what failed.
        assert landed.status_code == 200, f"the sign-in of {subject} answered {landed.status_code}: {landed.text[:300]}"
        return landed

    def rows(self, subject: str) -> list[dict[str, object]]:
        """The persisted rows of `subject` at this topology's provider."""
        return [row for row in self.stack.users() if (row["issuer"], row["subject"]) == (self.provider.issuer, subject)]

    def row(self, subject: str, **expected: object) -> dict[str, object]:
        """Wait for the user's row (with `expected` values) written by the worker."""

        def matching() -> dict[str, object] | None:
            rows = self.rows(subject)
            return rows[0] if rows and all(rows[0].get(name) == value for name, value in expected.items()) else None

        return wait_until(matching, timeout=30, what=f"the row of {subject} with {expected}")


def provider_settings(provider: HostileProvider) -> dict[str, object]:
    """What a stack needs to sign in through `provider`."""
    return {"OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET}


@contextmanager
def running_topology(
    name: str, workdir: Path, *, settings: Mapping[str, Any] | None = None, **stack: Any
) -> Iterator[Topology]:
    """A stack (start_stack's `stack` options) signing in through a provider of its own; both stopped after."""
    provider = HostileProvider().start()
    try:
        running = start_stack(
            workdir, provider=None, settings={**provider_settings(provider), **(settings or {})}, **stack
        )
    except BaseException:
        provider.stop()
        raise
    try:
        yield Topology(name, running, provider)
    finally:
        running.stop()
        provider.stop()


def two_devices_each(topology: Topology, subjects: list[str]) -> dict[str, list[requests.Session]]:
    """Two signed-in browsers for each subject (what a fault test keeps loading pages with)."""
    browsers = {subject: [requests.Session(), requests.Session()] for subject in subjects}
    for subject, pair in browsers.items():
        for browser in pair:
            topology.sign_in(browser, subject)
    return browsers


def revoke_others(topology: Topology, browser: requests.Session) -> requests.Response:
    """Press "Sign out everywhere else" on the devices page (the redirect is not followed)."""
    devices = browser.get(f"{topology.stack.web_url}/sessions", timeout=TIMEOUT)
    return browser.post(
        f"{topology.stack.web_url}/sessions/revoke-others",
        data={"csrf_token": csrf_token(devices.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def served_again(load: PageLoad, since: float) -> float:
    """Wait until pages have been served for 3 s without a miss; seconds from `since` to the last miss."""
    wait_until(
        lambda: load.answers["200"] > 0 and time.monotonic() - max(load.last_unserved, since) > 3,
        timeout=60,
        what="pages served for 3 s without a miss",
    )
    return max(load.last_unserved, since) - since


def assert_no_one_signed_out_but(
    topology: Topology, browsers: dict[str, list[requests.Session]], revoked: requests.Session
) -> None:
    """Every browser is still signed in, except `revoked`, whose revocation held; every user is persisted."""
    base = topology.stack.web_url
    for subject, pair in browsers.items():
        for browser in pair:
            if browser is revoked:
                assert is_signed_out(browser, base), "a revocation acknowledged before the fault was undone"
            else:
                assert not is_signed_out(browser, base), f"{subject} was signed out by the fault"
        topology.row(subject)


def post_logout_token(topology: Topology, claims: dict[str, object]) -> requests.Response:
    """The provider posts a Back-Channel Logout token naming `claims` (its `sid` and/or `sub`)."""
    token = topology.provider.logout_token(claims)
    return requests.post(
        f"{topology.stack.web_url}/auth/backchannel-logout", data={"logout_token": token}, timeout=TIMEOUT
    )


def test_sign_in_profile_edits_and_revocation(topology: Topology, subject: str) -> None:
    base = topology.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    page = topology.sign_in(laptop, subject, next_path="/profile")
    topology.sign_in(phone, subject)

    fields = form_values(page.text) | {"display_name": "Seen Everywhere"}
    saved = laptop.post(f"{base}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert saved.status_code == 302
    assert is_signed_in_as(phone, base, "Seen Everywhere")

    devices = laptop.get(f"{base}/sessions", timeout=TIMEOUT)
    revoked = laptop.post(
        f"{base}/sessions/revoke-others", data={"csrf_token": csrf_token(devices.text)}, allow_redirects=False
    )
    assert revoked.status_code == 302
    assert is_signed_out(phone, base)
    assert is_signed_in_as(laptop, base, "Seen Everywhere")
    topology.row(subject, display_name="Seen Everywhere")


def test_disable_and_deletion(topology: Topology, subject: str) -> None:
    stack = topology.stack
    browser, other = requests.Session(), requests.Session()
    topology.sign_in(browser, subject)
    topology.row(subject)

    stack.flask("users", "disable", subject, "--issuer", topology.provider.issuer)
    assert is_signed_out(browser, stack.web_url)
    stack.flask("users", "enable", subject, "--issuer", topology.provider.issuer)
    topology.row(subject, disabled=False)

    topology.sign_in(other, subject)
    confirm = other.get(f"{stack.web_url}/account/delete", timeout=TIMEOUT)
    deleted = other.post(
        f"{stack.web_url}/account/delete", data={"csrf_token": csrf_token(confirm.text)}, allow_redirects=False
    )
    assert deleted.status_code == 303
    assert is_signed_out(other, stack.web_url)
    wait_until(lambda: not topology.rows(subject), timeout=30, what="the deleted row gone")


def test_back_channel_logout_by_sid_ends_only_that_provider_session(topology: Topology, subject: str) -> None:
    base = topology.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    topology.sign_in(laptop, subject)
    topology.sign_in(phone, subject)
    laptop_sid, _phone_sid = topology.provider.sids[subject]

    # A sid-only token: the app finds the user through the provider-session lookup (its own key).
    answer = post_logout_token(topology, {"sid": laptop_sid})

    assert answer.status_code == 200, answer.text
    assert is_signed_out(laptop, base)
    assert not is_signed_out(phone, base)


def test_back_channel_logout_by_sub_ends_the_user_s_earlier_sessions(topology: Topology, subject: str) -> None:
    base = topology.stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    topology.sign_in(laptop, subject)
    topology.sign_in(phone, subject)
    signed_in_second = int(time.time())
    # A sub-only token ends the sessions started before its `iat`, in whole seconds.
    wait_until(lambda: int(time.time()) > signed_in_second, timeout=5, what="the next second")

    answer = post_logout_token(topology, {"sub": subject})

    assert answer.status_code == 200, answer.text
    assert is_signed_out(laptop, base)
    assert is_signed_out(phone, base)
    again = requests.Session()
    topology.sign_in(again, subject)
    assert not is_signed_out(again, base), "a sign-in after the logout token is a new session"


def test_parallel_requests_refresh_an_expired_token_once(topology: Topology, subject: str) -> None:
    provider = topology.provider
    # The sign-in's tokens live 5 s: within the app's expiry margin, so the next call must refresh first.
    # The refreshed ones live long, so the count below is only the refresh the expired token needs.
    provider.behaviour.access_token_lifetime = 5
    try:
        browser = requests.Session()
        topology.sign_in(browser, subject)
    finally:
        provider.behaviour.access_token_lifetime = 3600
    before = provider.token_requests("refresh_token")
    statuses: list[int] = []
    start = threading.Barrier(6)

    def load_dashboard() -> None:
        start.wait()
        answer = browser.get(f"{topology.stack.web_url}/dashboard", allow_redirects=False, timeout=TIMEOUT)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=load_dashboard) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * 6
    assert provider.token_requests("refresh_token") - before == 1, "one redeem however many requests race"
    assert not is_signed_out(browser, topology.stack.web_url)
