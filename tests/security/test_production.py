"""Production settings over real TLS: `__Host-` Secure cookie, HSTS, strict CSRF, the whole sign-in."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration


def test_production_cookie_is_secure_and_host_prefixed(production: Gatehouse, https_provider: HostileProvider) -> None:
    """`__Host-` name, Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain, set over https."""
    assert production.app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    browser = production.browser()
    response = browser.sign_in("alice")
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie[browser.cookie_name]
    assert browser.cookie_name == "__Host-gatehouse_session"
    assert morsel["secure"] is True and morsel["httponly"] is True
    assert morsel["samesite"] == "Lax" and morsel["path"] == "/" and morsel["domain"] == ""
    assert browser.signed_in_as() == "Alice"


def test_https_responses_carry_hsts(production: Gatehouse, https_provider: HostileProvider) -> None:
    """Every https response tells the browser to stay on https for a year."""
    browser = production.browser()
    for response in (browser.get("/"), browser.get("/login"), browser.get("/no-such-page")):
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000"), response.url


def test_the_whole_journey_works_under_production_settings(
    production: Gatehouse, https_provider: HostileProvider
) -> None:
    """Sign in, edit the profile (same-origin Referer, as browsers send over https), sign out."""
    browser = production.browser()
    browser.sign_in("alice", next_path="/profile")
    referer = {"Referer": f"{production.url}/profile", "Origin": production.url}
    form = {"csrf_token": browser.csrf_token(), "display_name": "Alice P.", "locale": "en", "timezone": "UTC"}
    assert browser.post("/profile", data=form, headers=referer).status_code == 302
    assert browser.signed_in_as() == "Alice P."
    # Over https Flask-WTF also wants a same-origin Referer (strict mode).
    assert browser.post("/logout", data={"csrf_token": browser.csrf_token()}).status_code == 400
    signed_out = browser.post("/logout", data={"csrf_token": browser.csrf_token()}, headers=referer)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"].startswith(f"{https_provider.issuer}/end-session?")
    assert production.session_records() == {}
