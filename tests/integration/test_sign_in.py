"""Sign-in through the real provider: /login?next=… → provider → /auth/callback → the page asked for."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integration.pages import form_values, texts, title
from tests.integration.provider import set_user_claims
from tests.support.browserless import SESSION_COOKIE, TIMEOUT, session_id, sign_in
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_sign_in_lands_on_the_requested_page_showing_the_user(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    set_user_claims(stack.provider_url, subject, {"name": "Ada Lovelace", "email": f"{subject}@example.org"})

    page = sign_in(browser, stack.web_url, subject, next_path="/profile")

    assert page.status_code == 200
    assert [urlsplit(hop.url).path for hop in page.history] == ["/auth/callback"]
    # The callback sends the browser on without the code and state in the address bar.
    assert page.history[0].headers["Location"] == "/profile"
    assert urlsplit(page.url).path == "/profile"
    assert urlsplit(page.url).query == ""
    assert title(page.text).startswith("Your profile")
    assert texts(page.text, "signed-in-as") == ["Ada Lovelace"]
    assert form_values(page.text)["display_name"] == "Ada Lovelace"
    record = stack.session_record(session_id(browser) or "")
    assert record is not None
    assert record["user"] == {
        "issuer": stack.provider_url,
        "subject": subject,
        "email": f"{subject}@example.org",
        "name": "Ada Lovelace",
        "picture": None,
    }


def test_second_sign_in_in_the_same_browser_gets_a_new_session_id(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, stack.web_url, subject, next_path="/profile")
    first = session_id(browser)

    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    second = session_id(browser)

    assert page.status_code == 200
    assert first and second and first != second
    assert stack.session_record(first) is None
    assert stack.session_record(second) is not None
    # The old id opens nothing any more.
    with requests.Session() as other:
        other.cookies.set(SESSION_COOKIE, first)
        replay = other.get(f"{stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert replay.status_code == 302
    assert urlsplit(replay.headers["Location"]).path == "/login"


def test_sign_in_never_sends_the_browser_off_site(stack: Stack, browser: requests.Session, subject: str) -> None:
    page = sign_in(browser, stack.web_url, subject, next_path="https://evil.example/steal")

    assert page.history[0].headers["Location"] == "/"
    assert urlsplit(page.url).netloc == urlsplit(stack.web_url).netloc
    assert texts(page.text, "signed-in-as") == [subject]


def test_provider_error_shows_a_friendly_page_and_no_session(stack: Stack, browser: requests.Session) -> None:
    start = browser.get(f"{stack.web_url}/login", params={"next": "/profile"}, allow_redirects=False, timeout=TIMEOUT)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]

    page = browser.get(
        f"{stack.web_url}/auth/callback", params={"error": "access_denied", "state": state}, timeout=TIMEOUT
    )

    assert page.status_code == 400
    assert "You declined to sign in, so you are not signed in." in page.text
    assert "Traceback" not in page.text
    assert texts(page.text, "signed-in-as") == []
    profile = browser.get(f"{stack.web_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert profile.status_code == 302
