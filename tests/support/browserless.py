"""Sign in and use Gatehouse over plain HTTP, as a browser would, with `requests`."""

from __future__ import annotations

import re
from collections.abc import Callable

import requests

# The CSRF field of the app's forms (every suite reads tokens with this one expression).
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Seconds a request may take: generous, because a loaded 2-core CI machine is slow, not broken.
TIMEOUT = 30


def mock_provider_form(http: requests.Session, base_url: str, authorize_url: str, subject: str) -> requests.Response:
    """oidc-provider-mock's page: POST the subject, then follow its redirect to /auth/callback and on."""
    consent = http.post(authorize_url, data={"sub": subject}, allow_redirects=False, timeout=TIMEOUT)
    assert consent.status_code == 302, consent.text
    return http.get(consent.headers["Location"], timeout=TIMEOUT)


# What a person does at the provider: (http, app base URL, authorize URL, subject) -> the app's last page.
ProviderPages = Callable[[requests.Session, str, str, str], requests.Response]


def sign_in(
    http: requests.Session,
    base_url: str,
    subject: str,
    next_path: str = "/",
    *,
    through: ProviderPages = mock_provider_form,
) -> requests.Response:
    """Go /login -> the provider's pages (`through`, the mock provider's by default) -> /auth/callback -> next page.

    Every HTTP sign-in of the suites that run processes goes through here; tests/e2e/http_sign_in.py
    passes the certified provider's login and consent forms.
    """
    start = http.get(f"{base_url}/login", params={"next": next_path}, allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 302, start.text
    return through(http, base_url, start.headers["Location"], subject)


def csrf_token(page_html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_FIELD.search(page_html)
    assert match, "no CSRF token on the page"
    return match.group(1)


# The development/testing cookie name (production adds the __Host- prefix).
SESSION_COOKIE = "gatehouse_session"


def session_id(http: requests.Session) -> str | None:
    """The session id the browser holds (the cookie's value), or None when it has none."""
    return http.cookies.get(SESSION_COOKIE)


def sign_out(http: requests.Session, base_url: str) -> requests.Response:
    """Press the Sign out button: POST /logout with the page's CSRF token (the redirect is not followed)."""
    page = http.get(f"{base_url}/", timeout=TIMEOUT)
    response = http.post(
        f"{base_url}/logout", data={"csrf_token": csrf_token(page.text)}, allow_redirects=False, timeout=TIMEOUT
    )
    assert response.status_code == 302, response.text
    return response
