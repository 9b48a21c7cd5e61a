"""/auth/callback: state, login CSRF, RFC 9207 `iss`, and what the response itself carries."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.security.checks import assert_login_refused, assert_private_auth_response, attempt_login
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import DROP, HostileProvider

pytestmark = pytest.mark.integration


def query_of(url: str) -> dict[str, str]:
    """The query parameters of `url`."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str | None) -> str:
    """`url` with query parameters replaced (None removes one)."""
    parts = urlsplit(url)
    query = query_of(url)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


def test_login_request_uses_pkce_s256_state_and_nonce(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The authorization request carries a fresh state, nonce and S256 code challenge."""
    browser = gatehouse.browser()
    first, second = query_of(browser.start_login()), query_of(browser.start_login())
    for params in (first, second):
        assert params["code_challenge_method"] == "S256"
        assert len(params["code_challenge"]) == 43
        assert len(params["state"]) >= 20 and len(params["nonce"]) >= 20
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]


def test_success_redirects_with_private_headers(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A good callback redirects to the local page asked for, so code and state leave the address bar."""
    browser = gatehouse.browser()
    response = browser.sign_in("alice", next_path="/profile")
    assert response.status_code == 302
    assert response.headers["Location"] == "/profile"
    assert_private_auth_response(response)
    assert browser.signed_in_as() == "Alice"


@pytest.mark.parametrize("state", [None, "", "made-up-state"], ids=["missing", "empty", "made up"])
def test_missing_or_unknown_state_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider, state: str | None
) -> None:
    """No state or one this browser never got: refused before the code is redeemed."""
    browser = gatehouse.browser()
    callback_url = browser.authorize(browser.start_login())
    response = browser.callback(with_query(callback_url, state=state))
    assert_login_refused(gatehouse, provider, browser, response)
    assert provider.token_requests() == 0


def test_altered_state_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """One character of the state changed: refused before the code is redeemed."""
    browser = gatehouse.browser()
    callback_url = browser.authorize(browser.start_login())
    state = query_of(callback_url)["state"]
    altered = state[:-1] + ("A" if state[-1] != "A" else "B")
    assert_login_refused(gatehouse, provider, browser, browser.callback(with_query(callback_url, state=altered)))
    assert provider.token_requests() == 0


def test_replayed_callback_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A state is good for one callback: replaying it (same or other browser) changes nothing."""
    browser = gatehouse.browser()
    callback_url = browser.authorize(browser.start_login(), "alice")
    assert browser.callback(callback_url).status_code == 302

    replay = browser.callback(callback_url)
    assert replay.status_code == 303
    assert browser.follow(replay).status_code == 400
    assert browser.signed_in_as() == "Alice"

    other = gatehouse.browser()
    replay = other.callback(callback_url)
    assert replay.status_code == 303
    assert other.signed_in_as() is None
    assert provider.token_requests() == 1
    assert gatehouse.signed_in_subjects() == ["alice"]


def test_login_csrf_cannot_sign_the_victim_in_as_the_attacker(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The attacker's own callback URL opened in the victim's browser: the victim is not signed in as them."""
    attacker = gatehouse.browser()
    attacker_callback = attacker.authorize(attacker.start_login(), "mallory")

    victim = gatehouse.browser()
    victim.start_login()  # the victim even has a sign-in of their own under way
    response = victim.callback(attacker_callback)

    assert_login_refused(gatehouse, provider, victim, response)
    assert provider.token_requests() == 0
    assert "mallory" not in gatehouse.signed_in_subjects()


def test_code_injected_with_the_victims_own_state_is_useless(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Even with the victim's state, an attacker's code fails: PKCE binds it to the attacker's verifier."""
    attacker = gatehouse.browser()
    attacker_code = query_of(attacker.authorize(attacker.start_login(), "mallory"))["code"]

    victim = gatehouse.browser()
    victim_callback = victim.authorize(victim.start_login(), "alice")
    response = victim.callback(with_query(victim_callback, code=attacker_code))

    assert_login_refused(gatehouse, provider, victim, response)
    assert "mallory" not in gatehouse.signed_in_subjects()


@pytest.mark.parametrize("iss", [None, "https://evil.example", "{issuer}/"], ids=["missing", "wrong", "near miss"])
def test_rfc9207_iss_must_match_when_advertised(
    gatehouse: Gatehouse, provider: HostileProvider, iss: str | None
) -> None:
    """The provider advertises the `iss` response parameter: a missing or wrong one aborts before the token call."""
    provider.behaviour.authorization_response = {"iss": DROP if iss is None else iss.format(issuer=provider.issuer)}
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))
    assert provider.token_requests() == 0


def test_rfc9207_wrong_iss_is_refused_even_when_not_advertised(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """An `iss` naming another issuer is a mix-up signal whatever the discovery document says."""
    provider.behaviour.discovery = {"authorization_response_iss_parameter_supported": DROP}
    provider.behaviour.authorization_response = {"iss": "https://evil.example"}
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))
    assert provider.token_requests() == 0


def test_no_iss_is_fine_when_not_advertised(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The control: a provider without RFC 9207 support sends no `iss`, and sign-in works."""
    provider.behaviour.discovery = {"authorization_response_iss_parameter_supported": False}
    provider.behaviour.send_iss = False
    browser = gatehouse.browser()
    assert attempt_login(browser).headers["Location"] == "/"
    assert browser.signed_in_as() == "Alice"
