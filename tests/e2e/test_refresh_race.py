"""Eight requests of one session find its access token expired at once, on two web processes: one refresh.

The certified provider rotates refresh tokens and, when a consumed one is presented again,
revokes the whole grant (the newest refresh token included). So a second redeem of the same
refresh token would not only show in `refresh_reuse_detected`: it would sign the session out.
Runs on SQLite and on PostgreSQL.

The tokens the bursts' refreshes get live a little longer than the app's refresh-ahead window:
a token that short-lived is, to the app, "expired" (or due for refresh) the moment it arrives,
so every later request would legitimately refresh again and the count would measure timing,
not single-flight. The stack's refresh-ahead window is short (TOKEN_REFRESH_AHEAD), so waiting for
the next expiry takes seconds, not the minute the default window would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.http_sign_in import sign_in
from tests.support.certified_provider import CertifiedProvider
from tests.support.polling import wait_until
from tests.support.postgres import database_url_for
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"
REQUESTS_PER_WEB = 4
BURSTS = 2
# The web processes refresh a working token this long before it expires (the default is 60 s).
REFRESH_AHEAD = 10
# Outside the refresh-ahead window for the few seconds each burst and its follow-up take.
REFRESHED_TOKEN_TTL = REFRESH_AHEAD + 10


@pytest.fixture(scope="module")
def two_web(database: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, the certified provider, one worker and two gunicorn web processes (2 processes x 4 threads each)."""
    workdir = tmp_path_factory.mktemp(f"refresh-race-{database}")
    running = start_stack(
        workdir,
        provider="certified",
        database_url=database_url_for(database, request, workdir, migrated=True),
        web=2,
        web_workers=2,
        settings={"TOKEN_REFRESH_AHEAD": REFRESH_AHEAD},
    )
    try:
        yield running
    finally:
        running.stop()


def wait_for_expiry(provider: CertifiedProvider, sub: str, ttl: int) -> None:
    """Until the provider holds no live access token of `sub` (every one it issued, `ttl` s long, has expired)."""
    wait_until(
        lambda: provider.account(sub)["live_access_tokens"] == 0,
        timeout=ttl + 15,
        interval=0.5,
        what="the provider to expire the access tokens",
    )


def burst(web_urls: list[str], cookie: str) -> list[requests.Response]:
    """GET /dashboard with one session cookie, REQUESTS_PER_WEB times on each web process, all released together."""
    targets = [url for url in web_urls for _ in range(REQUESTS_PER_WEB)]
    barrier = threading.Barrier(len(targets))

    def one(base_url: str) -> requests.Response:
        with requests.Session() as http:
            # Connect first (keep-alive), so the barrier releases requests, not TCP handshakes.
            assert http.get(f"{base_url}/readyz", timeout=10).status_code == 200
            http.cookies.set(SESSION_COOKIE, cookie)
            barrier.wait(timeout=30)
            return http.get(f"{base_url}/dashboard", allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(one, targets))


def assert_dashboard(response: requests.Response, login: str) -> None:
    """The dashboard answered with the API's data (not a redirect to sign in, not an error)."""
    assert response.status_code == 200, f"{response.url}: {response.status_code} {response.headers.get('location')}"
    assert 'data-testid="api-data"' in response.text, response.text[:1000]
    assert f"{login}@example.test" in response.text


def dashboard(base_url: str, cookie: str) -> requests.Response:
    """One GET /dashboard with the session cookie, redirects not followed."""
    return requests.get(f"{base_url}/dashboard", cookies={SESSION_COOKIE: cookie}, allow_redirects=False, timeout=30)


def test_parallel_requests_on_two_web_processes_refresh_an_expired_token_once(two_web: Stack) -> None:
    """Each burst after an expiry: 8 x 200 with API data, exactly one refresh grant, no reuse, session alive."""
    provider = two_web.provider
    login = f"race-{uuid.uuid4().hex[:8]}"
    provider.set_access_token_ttl(login, 2)
    with requests.Session() as http:
        sign_in(http, two_web.web_url, login, "/")
        cookie = http.cookies.get(SESSION_COOKIE)
    assert cookie
    ttl = 2

    grants = []
    for _ in range(BURSTS):
        wait_for_expiry(provider, login, ttl)
        ttl = provider.set_access_token_ttl(login, REFRESHED_TOKEN_TTL)["access_token_ttl"]
        before = provider.account(login)
        assert before["live_access_tokens"] == 0 and before["live_refresh_tokens"] == 1, before

        responses = burst(two_web.web_urls, cookie)

        after = provider.account(login)
        for response in responses:
            assert_dashboard(response, login)
        assert after["refresh_reuse_detected"] == 0
        grants.append(after["refresh_grants"] - before["refresh_grants"])
        assert grants[-1] == 1, f"refresh grants per burst: {grants}"
        assert (after["live_access_tokens"], after["live_refresh_tokens"]) == (1, 1), after

        # The same session keeps working on both web processes, on the one refreshed token.
        for base_url in two_web.web_urls:
            assert_dashboard(dashboard(base_url, cookie), login)
        assert provider.account(login)["refresh_grants"] == after["refresh_grants"]
    assert grants == [1] * BURSTS
    assert provider.account(login)["refresh_reuse_detected"] == 0
