"""Sign-out: POST with CSRF only; the record and cookie go, and the provider's session ends too."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integration.pages import texts
from tests.support.browserless import SESSION_COOKIE, TIMEOUT, csrf_token, session_id, sign_in
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_logout_without_csrf_token_is_refused_and_keeps_the_user_signed_in(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, stack.web_url, subject, next_path="/profile")
    sid = session_id(browser)

    response = browser.post(f"{stack.web_url}/logout", allow_redirects=False, timeout=TIMEOUT)

    assert response.status_code == 400
    assert "This form has expired." in response.text
    assert session_id(browser) == sid
    assert stack.session_record(sid or "") is not None
    profile = browser.get(f"{stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert profile.status_code == 200
    assert texts(profile.text, "signed-in-as") == [subject]


def test_logout_deletes_the_record_clears_the_cookie_and_ends_the_provider_session_over_http(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    sid = session_id(browser) or ""
    record = stack.session_record(sid)
    assert record is not None

    response = browser.post(
        f"{stack.web_url}/logout", data={"csrf_token": csrf_token(page.text)}, allow_redirects=False, timeout=TIMEOUT
    )

    assert response.status_code == 302
    assert stack.session_record(sid) is None
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=;")
    assert "Max-Age=0" in cookie or "Expires=Thu, 01 Jan 1970" in cookie
    assert session_id(browser) is None
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{stack.provider_url}/oauth2/end_session"
    query = parse_qs(target.query)
    assert query["id_token_hint"] == [record["tokens"]["id_token"]]
    assert query["post_logout_redirect_uri"] == [f"{stack.web_url}/login?reason=signed_out"]
    # The provider's confirmation page leads back to the app, which says the user is signed out.
    confirm_page = browser.get(response.headers["Location"], timeout=TIMEOUT)
    assert confirm_page.status_code == 200
    back = browser.post(
        f"{stack.provider_url}/oauth2/end_session/confirm",
        data={"redirect_uri": query["post_logout_redirect_uri"][0]},
        timeout=TIMEOUT,
    )
    assert urlsplit(back.url).netloc == urlsplit(stack.web_url).netloc
    assert texts(back.text, "login-notice") == ["You have been signed out."]
    assert texts(back.text, "signed-in-as") == []
    # Replaying the old cookie opens no private page.
    with requests.Session() as replay:
        replay.cookies.set(SESSION_COOKIE, sid)
        profile = replay.get(f"{stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert profile.status_code == 302
    assert urlsplit(profile.headers["Location"]).path == "/login"


def test_get_logout_is_not_allowed(stack: Stack, browser: requests.Session, subject: str) -> None:
    sign_in(browser, stack.web_url, subject, next_path="/profile")
    sid = session_id(browser)

    response = browser.get(f"{stack.web_url}/logout", allow_redirects=False, timeout=TIMEOUT)

    assert response.status_code == 405
    assert stack.session_record(sid or "") is not None
    assert browser.get(f"{stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT).status_code == 200
