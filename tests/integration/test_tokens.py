"""Short-lived tokens: an expired access token is refreshed quietly; a revoked grant ends the session cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integration.pages import table, texts
from tests.integration.provider import revoke_tokens, userinfo_status
from tests.support.browserless import SESSION_COOKIE, TIMEOUT, session_id, sign_in
from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

# Seconds the provider's access (and ID) tokens live. Gatehouse refreshes tokens
# that expire within 30 s, so on this stack every token counts as expired.
TOKEN_MAX_AGE = 3


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose provider issues access tokens that expire after TOKEN_MAX_AGE seconds."""
    running = start_stack(tmp_path_factory.mktemp("short-tokens"), token_max_age=TOKEN_MAX_AGE)
    try:
        yield running
    finally:
        running.stop()


def stored_tokens(stack: Stack, http: requests.Session) -> dict:
    """The tokens in the browser's stored session record."""
    record = stack.session_record(session_id(http) or "")
    assert record is not None, "the session record is gone"
    return record["tokens"]


def test_expired_access_token_is_refreshed_without_signing_the_user_out(
    short_stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, short_stack.web_url, subject, next_path="/profile")
    sid = session_id(browser)
    old = stored_tokens(short_stack, browser)
    # Wait until the provider itself refuses the old access token.
    wait_until(
        lambda: userinfo_status(short_stack.provider_url, old["access_token"]) != 200,
        timeout=TOKEN_MAX_AGE + 10,
        interval=0.2,
        what="the access token to expire at the provider",
    )

    page = browser.get(f"{short_stack.web_url}/dashboard", timeout=TIMEOUT)

    assert page.status_code == 200
    assert table(page.text, "api-data")["sub"] == subject
    assert session_id(browser) == sid
    new = stored_tokens(short_stack, browser)
    assert new["access_token"] != old["access_token"]
    assert new["expires_at"] > time.time()
    # The ID token survives the refresh: sign-out needs it as id_token_hint.
    assert new["id_token"]
    assert userinfo_status(short_stack.provider_url, new["access_token"]) == 200
    still_signed_in = browser.get(f"{short_stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert still_signed_in.status_code == 200
    assert texts(still_signed_in.text, "signed-in-as") == [subject]


def test_revoked_grant_sends_the_browser_to_login_and_deletes_the_session(
    short_stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, short_stack.web_url, subject, next_path="/profile")
    sid = session_id(browser)
    assert sid and short_stack.session_record(sid) is not None
    revoke_tokens(short_stack.provider_url, subject)

    page = browser.get(f"{short_stack.web_url}/dashboard", timeout=TIMEOUT)

    assert [hop.status_code for hop in page.history] == [302]
    assert urlsplit(page.url).path == "/login"
    assert parse_qs(urlsplit(page.url).query) == {"reason": ["expired"]}
    assert page.status_code == 200
    assert texts(page.text, "login-notice") == ["Your session has ended. Please sign in again."]
    assert short_stack.session_record(sid) is None
    assert session_id(browser) is None
    # Replaying the old cookie opens no private page.
    with requests.Session() as replay:
        replay.cookies.set(SESSION_COOKIE, sid)
        for path in ("/profile", "/dashboard"):
            response = replay.get(f"{short_stack.web_url}{path}", allow_redirects=False, timeout=TIMEOUT)
            assert response.status_code == 302, path
            assert urlsplit(response.headers["Location"]).path == "/login", path


def test_revoked_grant_answers_a_json_request_with_401(
    short_stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, short_stack.web_url, subject, next_path="/profile")
    sid = session_id(browser)
    assert sid
    revoke_tokens(short_stack.provider_url, subject)

    response = browser.get(
        f"{short_stack.web_url}/dashboard",
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "sign-in required"
    assert short_stack.session_record(sid) is None
    assert session_id(browser) is None
