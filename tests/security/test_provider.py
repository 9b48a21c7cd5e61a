"""The provider's other answers: discovery, UserInfo, error responses and refreshed tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.checks import assert_login_refused, attempt_login
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import DROP, HostileProvider

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("userinfo", [{"sub": "mallory"}, {"sub": DROP}, {"sub": ["alice"]}])
def test_userinfo_for_another_subject_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider, userinfo: dict[str, Any]
) -> None:
    """UserInfo whose `sub` is not the ID token's: refused after that one call, no session."""
    provider.behaviour.userinfo = userinfo
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser), userinfo_calls=1)


def test_userinfo_cannot_override_id_token_claims(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Identity comes from the verified ID token; UserInfo only fills gaps."""
    provider.behaviour.userinfo = {"email": "mallory@evil.example", "iss": "https://evil.example"}
    browser = gatehouse.browser()
    browser.sign_in("alice")
    (record,) = gatehouse.session_records().values()
    assert record["user"]["email"] == "alice@example.org"
    assert record["user"]["issuer"] == provider.issuer


@pytest.mark.parametrize("issuer", ["https://evil.example", "{issuer}/", "{issuer}/other"])
def test_discovery_for_another_issuer_stops_before_redirecting(
    gatehouse: Gatehouse, provider: HostileProvider, issuer: str
) -> None:
    """A discovery document naming another issuer: a friendly page, nobody is sent to the provider."""
    provider.behaviour.discovery = {"issuer": issuer.format(issuer=provider.issuer)}
    browser = gatehouse.browser()
    response = browser.get("/login", params={"next": "/profile"})
    assert response.status_code == 503
    assert "Location" not in response.headers
    assert 'data-testid="login-error"' in response.text
    assert provider.issuer + "/authorize" not in response.text
    assert provider.hits("/jwks") == 0
    assert provider.authorize_params() == []


def test_discovery_changing_issuer_mid_sign_in_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Another web process reads a discovery document for another issuer: the callback stops before the token call."""
    browser = gatehouse.browser()
    callback_url = browser.authorize(browser.start_login())
    provider.behaviour.discovery = {"issuer": "https://evil.example"}
    gatehouse.configure()  # a fresh process: it fetches discovery again
    assert_login_refused(gatehouse, provider, browser, browser.callback(callback_url))
    assert provider.token_requests() == 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("access_denied", "You declined to sign in"),
        ("login_required", "needs you to sign in there first"),
        ("temporarily_unavailable", "We could not sign you in"),
    ],
)
def test_authorization_error_responses_are_friendly(
    gatehouse: Gatehouse, provider: HostileProvider, error: str, message: str
) -> None:
    """`error=...` from the provider: a clear message, no token request, no session."""
    provider.behaviour.authorization_response = {
        "error": error,
        "error_description": "<script>alert(1)</script>",
        "code": DROP,
    }
    browser = gatehouse.browser()
    page = assert_login_refused(gatehouse, provider, browser, attempt_login(browser))
    assert message in page.text
    # The provider's free text never reaches the page.
    assert "<script>alert(1)" not in page.text and "alert(1)" not in page.text
    assert provider.token_requests() == 0


@pytest.mark.parametrize(
    "token_error",
    [(400, {"error": "invalid_grant"}), (401, {"error": "invalid_client"}), (500, {"oops": True})],
    ids=["invalid_grant", "invalid_client", "server error"],
)
def test_token_endpoint_errors_are_friendly(
    gatehouse: Gatehouse, provider: HostileProvider, token_error: tuple[int, dict[str, Any]]
) -> None:
    """The token endpoint refuses or breaks: a friendly refusal, never a 500."""
    provider.behaviour.token_error = token_error
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))


def _signed_in_with_expired_token(gatehouse: Gatehouse, provider: HostileProvider) -> Any:
    """Alice signed in with an access token that is due for refresh on the next API call."""
    provider.behaviour.access_token_lifetime = 1
    browser = gatehouse.browser()
    browser.sign_in("alice")
    assert provider.hits("/userinfo") == 1
    return browser


def test_an_honest_refresh_keeps_the_user(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The control: a refresh whose new ID token names the same user goes through."""
    browser = _signed_in_with_expired_token(gatehouse, provider)
    page = browser.get("/dashboard")
    assert page.status_code == 200, page.text[:300]
    assert "gold" in page.text
    assert provider.token_requests("refresh_token") == 1
    assert gatehouse.signed_in_subjects() == ["alice"]


@pytest.mark.parametrize(
    "refresh_claims",
    [{"sub": "mallory"}, {"iss": "https://evil.example"}, {"aud": "someone-else"}],
    ids=["another sub", "another iss", "another aud"],
)
def test_a_refresh_naming_someone_else_never_changes_who_is_signed_in(
    gatehouse: Gatehouse, provider: HostileProvider, refresh_claims: dict[str, Any]
) -> None:
    """A refreshed ID token for another user or issuer: its tokens are never used, the session ends."""
    browser = _signed_in_with_expired_token(gatehouse, provider)
    provider.behaviour.refresh_claims = refresh_claims

    page = browser.get("/dashboard")

    assert provider.token_requests("refresh_token") == 1
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?reason=expired")
    # Not signed in as anyone else, and the API never saw the refreshed token.
    assert gatehouse.signed_in_subjects() == []
    assert browser.signed_in_as() is None
    assert provider.hits("/userinfo") == 1


def test_discovery_fields_cannot_reconfigure_the_client(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Security settings come from Gatehouse, never from discovery (Authlib would merge the whole document in)."""
    provider.behaviour.discovery = {
        "code_challenge_method": "plain",
        "token_endpoint_auth_method": "client_secret_post",
        "default_timeout": 0.000001,
        "verify": False,
        "scope": "openid offline_access admin",
        "client_id": "someone-else",
        "client_secret": "a-secret-from-the-provider",
        "redirect_uri": "https://evil.example/callback",
    }
    browser = gatehouse.browser()
    landed = browser.sign_in("alice")
    assert landed.status_code == 302
    (authorize,) = provider.authorize_params()
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["client_id"] != "someone-else"
    assert authorize["scope"] == "openid email profile"
    assert not authorize["redirect_uri"].startswith("https://evil.example")
    # The token endpoint accepts only client_secret_basic with Gatehouse's own secret and an S256 verifier.
    assert provider.token_requests("authorization_code") == 1
    assert browser.signed_in_as() == "Alice"
