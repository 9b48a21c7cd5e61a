"""Sign in and use Gatehouse over plain HTTP, as a browser would, with `requests`."""

from __future__ import annotations

import re

import requests

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Seconds a request may take: generous, because a loaded 2-core CI machine is slow, not broken.
TIMEOUT = 30


def sign_in(http: requests.Session, base_url: str, subject: str, next_path: str = "/") -> requests.Response:
    """Go /login -> provider form -> POST the subject -> /auth/callback -> next page."""
    start = http.get(f"{base_url}/login", params={"next": next_path}, allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 302, start.text
    authorize_url = start.headers["Location"]
    consent = http.post(authorize_url, data={"sub": subject}, allow_redirects=False, timeout=TIMEOUT)
    assert consent.status_code == 302, consent.text
    return http.get(consent.headers["Location"], timeout=TIMEOUT)


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
