"""Outbound calls are capped in size and total time: a huge or trickled answer costs a bounded wait, then a refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from oidc.provider import oidc_providers
from tests.security.checks import assert_login_refused
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.support.downstream_api import DownstreamApi

pytestmark = pytest.mark.integration

TOTAL = 1.5  # OIDC_TIMEOUT / API_TIMEOUT for these tests: seconds per call, in all


@pytest.mark.parametrize("path", ["/userinfo", "/token"])
@pytest.mark.parametrize("kind", ["trickle", "huge"])
def test_an_abusive_provider_answer_ends_sign_in_in_bounded_time(
    gatehouse: Gatehouse, provider: HostileProvider, path: str, kind: str
) -> None:
    """The provider trickles its answer for 30 s, or sends 64 MiB: sign-in is refused after about OIDC_TIMEOUT."""
    gatehouse.configure(OIDC_TIMEOUT=TOTAL, OIDC_MAX_RESPONSE_BYTES=256 * 1024)
    browser = gatehouse.browser()
    authorize = browser.start_login()
    callback = browser.authorize(authorize)
    provider.behaviour.abuse = {path: kind}
    started = time.monotonic()
    response = browser.callback(callback)
    elapsed = time.monotonic() - started
    assert elapsed < TOTAL + 2, f"the callback took {elapsed:.1f}s"
    assert_login_refused(gatehouse, provider, browser, response, userinfo_calls=1 if path == "/userinfo" else 0)


@pytest.mark.parametrize("kind", ["trickle", "huge"])
def test_an_abusive_discovery_document_fails_fast(gatehouse: Gatehouse, provider: HostileProvider, kind: str) -> None:
    """Discovery goes through the same bounded client: /login answers the "unavailable" page in bounded time."""
    gatehouse.configure(OIDC_TIMEOUT=TOTAL, OIDC_MAX_RESPONSE_BYTES=256 * 1024)
    provider.behaviour.abuse = {"/.well-known/openid-configuration": kind}
    started = time.monotonic()
    response = gatehouse.browser().get("/login")
    assert time.monotonic() - started < TOTAL + 2
    assert response.status_code == 503


def test_a_failed_jwks_reload_keeps_the_last_good_keys(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Keys loaded once keep working when a later fetch fails (here: a forced refetch for an unknown key)."""
    gatehouse.browser().sign_in("alice")
    provider.behaviour.abuse = {"/jwks": "huge"}
    oidc_providers(gatehouse.app).all[0].keys._fetched_at -= 7200  # the hourly reload is due
    browser = gatehouse.browser()
    browser.sign_in("bob")
    assert browser.signed_in_as() == "Bob"


@pytest.fixture
def api(downstream_api: DownstreamApi, gatehouse: Gatehouse) -> Iterator[DownstreamApi]:
    """The real local API as API_BASE_URL, with a short total time and a small size cap."""
    downstream_api.reset()
    gatehouse.configure(API_BASE_URL=downstream_api.url, API_TIMEOUT=TOTAL, API_MAX_RESPONSE_BYTES=64 * 1024)
    yield downstream_api
    downstream_api.reset()


def test_a_huge_api_answer_is_refused_not_loaded(
    gatehouse: Gatehouse, provider: HostileProvider, api: DownstreamApi
) -> None:
    """An API answer over API_MAX_RESPONSE_BYTES shows an error; the user stays signed in."""
    api.payload = lambda token: {"blob": "x" * (1024 * 1024)}
    browser = gatehouse.browser()
    browser.sign_in("alice")
    page = browser.get("/dashboard")
    assert page.status_code == 502
    assert "too large" in page.text
    assert browser.signed_in_as() == "Alice"


def test_a_stalled_api_answer_ends_in_bounded_time(
    gatehouse: Gatehouse, provider: HostileProvider, api: DownstreamApi
) -> None:
    """An API that never finishes answering costs about API_TIMEOUT, then an error page; nobody is signed out."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    api.hold()
    try:
        started = time.monotonic()
        page = browser.get("/dashboard")
        elapsed = time.monotonic() - started
    finally:
        api.release()
    assert elapsed < TOTAL + 2
    assert page.status_code == 502
    assert "took too long" in page.text
    assert browser.signed_in_as() == "Alice"
