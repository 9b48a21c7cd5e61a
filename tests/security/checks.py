"""Assertions shared by the security tests: what a refused sign-in must look like."""

from __future__ import annotations

import requests

from tests.security.browser import Browser
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

# The fewest settings create_app accepts (no server is contacted): for start-up checks.
MINIMAL_ENVIRON = {
    "GATEHOUSE_ENV": "development",
    "SECRET_KEY": "x",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "OIDC_ISSUER": "https://issuer.example",
    "OIDC_CLIENT_ID": "c",
    "OIDC_CLIENT_SECRET": "s",
}


def assert_private_auth_response(response: requests.Response) -> None:
    """Sign-in responses carry codes and state: never cached, never sent on as a Referer."""
    assert response.headers.get("Cache-Control") == "no-store", response.headers
    assert response.headers.get("Referrer-Policy") == "no-referrer", response.headers


def assert_login_refused(
    gatehouse: Gatehouse,
    provider: HostileProvider,
    browser: Browser,
    response: requests.Response,
    *,
    userinfo_calls: int = 0,
) -> requests.Response:
    """A refused callback: a redirect off the callback URL to a friendly page, no session, no UserInfo.

    Returns the error page.
    """
    assert response.status_code != 500
    assert_private_auth_response(response)
    # The code and state leave the address bar even when sign-in fails.
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert "code=" not in location and "state=" not in location, location
    page = browser.follow(response)
    assert page.status_code == 400, (page.status_code, page.text[:300])
    assert 'data-testid="login-error"' in page.text
    assert "Traceback" not in page.text
    assert browser.signed_in_as() is None
    assert gatehouse.signed_in_subjects() == []
    # Nothing was asked of the provider on the user's behalf after the refusal.
    assert provider.hits("/userinfo") == userinfo_calls
    return page


def attempt_login(browser: Browser, login_as: str = "alice") -> requests.Response:
    """Start a sign-in, sign in at the provider, bring the answer back; the app's callback response."""
    return browser.callback(browser.authorize(browser.start_login(), login_as))
