"""Rate limits on /login and /auth/callback: counted in the app's Redis, a friendly 429 page."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings
from tests.security.checks import MINIMAL_ENVIRON
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration


def test_login_is_rate_limited_with_a_friendly_page(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The fourth /login within the minute gets the 429 page with Retry-After."""
    gatehouse.configure(LOGIN_RATE_LIMIT="3 per minute")
    browser = gatehouse.browser()
    for _ in range(3):
        assert browser.get("/login").status_code == 302
    refused = browser.get("/login")
    assert refused.status_code == 429
    assert "Too many requests" in refused.text and "Please wait a minute" in refused.text
    assert "Traceback" not in refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert len(provider.authorize_params()) == 0  # nobody was sent to the provider by the refused one
    # Other pages are not limited.
    assert browser.get("/").status_code == 200


def test_limit_headers_come_with_the_limited_endpoints_only(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """/login tells the client its limit and what is left; pages that are not limited carry no such headers."""
    gatehouse.configure(LOGIN_RATE_LIMIT="5 per minute")
    browser = gatehouse.browser()
    first, second = browser.get("/login"), browser.get("/login")
    assert first.headers["X-RateLimit-Limit"] == "5"
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == ("4", "3")
    assert int(second.headers["X-RateLimit-Reset"]) > 0
    for page in (browser.get("/"), browser.get("/healthz"), browser.get("/no-such-page")):
        assert not [name for name in page.headers if name.lower().startswith(("x-ratelimit", "retry-after"))]


def test_api_clients_get_a_json_429(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A client that asks for JSON gets a JSON error, not a page."""
    gatehouse.configure(LOGIN_RATE_LIMIT="1 per minute")
    browser = gatehouse.browser()
    browser.get("/login")
    refused = browser.get("/login", headers={"Accept": "application/json"})
    assert refused.status_code == 429
    assert refused.json()["error"]


def test_counts_live_in_the_apps_redis_and_are_shared_by_processes(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """The counters are Redis keys; another web process (a second app on that Redis) sees the same count."""
    gatehouse.configure(LOGIN_RATE_LIMIT="2 per minute")
    browser = gatehouse.browser()
    for _ in range(2):
        assert browser.get("/login").status_code == 302
    assert [key for key in gatehouse.redis.scan_iter(match="LIMITS:LIMITER/gatehouse-limits/*")]

    gatehouse.configure(LOGIN_RATE_LIMIT="2 per minute")  # a new process, same Redis
    assert browser.get("/login").status_code == 429


def test_limits_are_per_client_address(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Behind a trusted proxy, one client's burst does not lock out another."""
    gatehouse.configure(LOGIN_RATE_LIMIT="2 per minute", PROXY_FIX_HOPS=1)
    noisy, quiet = gatehouse.browser(), gatehouse.browser()
    for _ in range(2):
        assert noisy.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 302
    assert noisy.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert quiet.get("/login", headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 302


def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Third pass, item 7: the test's own address (127.0.0.1) is no trusted proxy here, so its forged
    X-Forwarded-For are not believed and every start counts against that one address."""
    gatehouse.configure(LOGIN_RATE_LIMIT="3 per minute", PROXY_FIX_HOPS=1, FORWARDED_ALLOW_IPS="10.99.0.1")
    browser = gatehouse.browser()
    answers = [
        browser.get("/login", headers={"X-Forwarded-For": f"203.0.113.{index}"}).status_code for index in range(8)
    ]
    assert answers == [302, 302, 302, 429, 429, 429, 429, 429]


def test_callback_is_rate_limited_before_any_token_request(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Past the callback limit even a genuine provider answer is refused, and the code is not redeemed."""
    gatehouse.configure(CALLBACK_RATE_LIMIT="2 per minute")
    browser = gatehouse.browser()
    for _ in range(2):
        assert browser.get("/auth/callback", params={"state": "guess", "code": "guess"}).status_code == 303
    callback_url = browser.authorize(browser.start_login())
    refused = browser.callback(callback_url)
    assert refused.status_code == 429
    assert "Too many requests" in refused.text
    assert provider.token_requests() == 0
    assert gatehouse.signed_in_subjects() == []


@pytest.mark.parametrize("value", ["", "lots", "30 per fortnight", "-1 per minute"])
def test_rate_limits_are_checked_at_start(value: str) -> None:
    """A limit that does not parse stops the app at start with the setting named."""
    environ = dict(MINIMAL_ENVIRON)
    assert load_settings(environ)["LOGIN_RATE_LIMIT"] == "30 per minute"
    with pytest.raises(ConfigError, match="CALLBACK_RATE_LIMIT"):
        load_settings(environ, overrides={"CALLBACK_RATE_LIMIT": value})


def test_ipv6_clients_are_counted_per_64(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Addresses of one IPv6 /64 share a limit (one host can use them all); another /64 has its own."""
    gatehouse.configure(LOGIN_RATE_LIMIT="2 per minute", PROXY_FIX_HOPS=1)
    browser = gatehouse.browser()

    def login_from(address: str) -> int:
        return browser.get("/login", headers={"X-Forwarded-For": address}).status_code

    assert login_from("2001:db8:1:2::1") == 302
    assert login_from("2001:db8:1:2:ffff::9") == 302
    assert login_from("2001:db8:1:2:abcd:1234:5678:9abc") == 429
    assert login_from("2001:db8:1:3::1") == 302
    assert login_from("203.0.113.7") == 302


def test_a_browser_holds_a_bounded_number_of_sign_ins_in_progress(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Starting sign-in over and over keeps at most 10 attempts in the session, which expires in 10 minutes."""
    browser = gatehouse.browser()
    for _ in range(25):
        assert browser.get("/login").status_code == 302
    record = gatehouse.session_record(browser.session_id)
    assert record is not None
    assert len([key for key in record if key.startswith("_login_state_")]) == 10
    ttl = gatehouse.redis.ttl(f"gh:a:{browser.session_id}")
    assert 0 < ttl <= 600
    # The newest attempt still completes.
    browser.sign_in("alice")
    assert browser.signed_in_as() == "Alice"


# ---- third pass, items 10 and 11: what anonymous sign-in state and one user's requests may cost ----------


def test_sign_in_starts_from_one_wider_network_are_capped(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Every /64 of one IPv6 /48 has its own per-address limit, but the /48 shares one cap; another /48 does not."""
    gatehouse.configure(
        LOGIN_RATE_LIMIT="100 per minute", LOGIN_RATE_LIMIT_PER_NETWORK="3 per minute", PROXY_FIX_HOPS=1
    )
    browser = gatehouse.browser()

    def start_from(address: str) -> int:
        return browser.get("/login", headers={"X-Forwarded-For": address}).status_code

    assert [start_from(f"2001:db8:1:{index:x}::1") for index in range(5)] == [302, 302, 302, 429, 429]
    assert start_from("2001:db8:2::1") == 302
    assert "Too many requests" in browser.get("/login", headers={"X-Forwarded-For": "2001:db8:1:9::1"}).text


def test_sign_in_starts_from_everyone_together_are_capped(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """At the total cap a start from anywhere gets the 429 page, and a signed-in user's pages are untouched."""
    signed_in = gatehouse.browser()
    signed_in.sign_in("alice")
    gatehouse.configure(LOGIN_RATE_LIMIT_TOTAL="3 per minute", PROXY_FIX_HOPS=1)
    browser = gatehouse.browser()
    answers = [
        browser.get("/login", headers={"X-Forwarded-For": f"198.51.{index}.1"}).status_code for index in range(5)
    ]
    assert answers == [302, 302, 302, 429, 429]
    assert signed_in.get("/profile").status_code == 200


def test_one_user_s_state_changing_requests_are_limited(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """300 revoke-others in a row no longer make 300 audit events: past the per-user limit they are refused,
    while another user is unaffected."""
    gatehouse.configure(USER_ACTION_RATE_LIMIT="3 per minute")
    alice, bob = gatehouse.browser(), gatehouse.browser()
    alice.sign_in("alice")
    bob.sign_in("bob")
    token = alice.csrf_token("/sessions")
    answers = [alice.post("/sessions/revoke-others", data={"csrf_token": token}).status_code for _ in range(6)]
    assert answers == [302, 302, 302, 429, 429, 429]
    assert bob.post("/sessions/revoke-others", data={"csrf_token": bob.csrf_token("/sessions")}).status_code == 302
    assert alice.get("/sessions").status_code == 200  # reading is not limited
