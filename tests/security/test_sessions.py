"""Sessions (OWASP ASVS 5.0 chapter 7): new ids at every sign-in, no adopted ids, cookie flags, logout."""

from __future__ import annotations

import base64
import re
from http.cookies import SimpleCookie

import pytest
import requests
from flask import Response, flash, request

from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.support.session_records import session_exists

pytestmark = pytest.mark.integration

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def set_cookie(response: requests.Response, name: str) -> SimpleCookie:
    """The `Set-Cookie` of the session cookie in a response (fails if there is none)."""
    header = response.headers.get("Set-Cookie", "")
    assert name in header, response.headers
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(header)
    return cookie


def test_sign_in_issues_a_new_session_id(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The anonymous session that carried the sign-in is replaced, and its record is gone."""
    browser = gatehouse.browser()
    callback_url = browser.authorize(browser.start_login())
    before = browser.session_id
    assert before and gatehouse.session_record(before) is not None

    browser.callback(callback_url)

    assert browser.session_id not in (None, before)
    assert gatehouse.session_record(before) is None
    assert gatehouse.session_record(browser.session_id)["user"]["subject"] == "alice"


def test_re_authentication_issues_a_new_session_id(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Signing in again while signed in: another new id, and the old one opens nothing."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    first = browser.session_id
    browser.sign_in("alice")
    second = browser.session_id

    assert second not in (None, first)
    assert gatehouse.session_record(first) is None
    stale = gatehouse.browser()
    stale.set_session_id(first)
    assert stale.signed_in_as() is None
    assert browser.signed_in_as() == "Alice"


def test_session_fixation_fails(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """An attacker plants their own (real, anonymous) session id in the victim's browser; it never gets signed in."""
    attacker = gatehouse.browser()
    attacker.start_login()
    planted = attacker.session_id
    assert planted

    victim = gatehouse.browser()
    victim.set_session_id(planted)
    victim.sign_in("alice")

    assert victim.session_id != planted
    assert attacker.signed_in_as() is None
    assert gatehouse.session_record(planted) is None
    assert gatehouse.signed_in_subjects() == ["alice"]


@pytest.mark.parametrize("made_up", ["made-up-by-the-client", "A" * 43, "../../etc/passwd", "x" * 300])
def test_a_session_id_the_client_made_up_is_never_adopted(
    gatehouse: Gatehouse, provider: HostileProvider, made_up: str
) -> None:
    """An unknown id from the client is replaced by a server-made one, before and after sign-in."""
    browser = gatehouse.browser()
    browser.set_session_id(made_up)
    start = browser.get("/login")
    assert start.status_code == 302
    issued = set_cookie(start, browser.cookie_name)[browser.cookie_name].value
    assert issued != made_up
    assert not session_exists(gatehouse.redis, made_up)

    browser.sign_in("alice")
    assert browser.session_id != made_up
    assert not session_exists(gatehouse.redis, made_up)


def test_session_ids_carry_at_least_128_random_bits(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Ids are "<user tag>.<random>": the random part is 256 bits from `secrets`, never repeated."""
    ids = set()
    for _ in range(6):
        browser = gatehouse.browser()
        browser.sign_in("alice")
        ids.add(browser.session_id)
    assert len(ids) == 6
    tags = set()
    for session_id in ids:
        tag, _, random_part = session_id.partition(".")
        tags.add(tag)
        assert SESSION_ID.match(random_part), session_id
        raw = base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))
        assert len(raw) * 8 >= 128
    # The tag only groups one user's keys in Redis (the same for all of alice's sessions).
    assert len(tags) == 1


def test_session_cookie_flags(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """HttpOnly, SameSite=Lax (the state must survive the provider's redirect), host-only, Path=/."""
    browser = gatehouse.browser()
    response = browser.sign_in("alice")
    morsel = set_cookie(response, browser.cookie_name)[browser.cookie_name]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    # A browser-session cookie: the server decides when the session ends.
    assert morsel["expires"] == "" and morsel["max-age"] == ""


def test_authenticated_responses_are_private(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Every response to a signed-in browser says `Cache-Control: no-store` and `Vary: Cookie`."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    responses = [
        browser.get("/"),
        browser.get("/profile"),
        browser.get("/dashboard"),
        browser.get("/dashboard", headers={"Accept": "application/json"}),
        browser.get("/login", params={"reason": "signed_out"}),
        browser.get("/auth/failed"),
        browser.get("/no-such-page"),
        browser.post("/profile", data={"display_name": "x"}),  # no CSRF token: 400
    ]
    for response in responses:
        assert "no-store" in response.headers.get("Cache-Control", ""), (response.url, response.headers)
        assert "Cookie" in response.headers.get("Vary", ""), (response.url, response.headers)


def _sign_out(browser, gatehouse: Gatehouse) -> requests.Response:  # type: ignore[no-untyped-def]
    token = browser.csrf_token("/profile")
    response = browser.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302, response.text[:300]
    return response


def test_logout_deletes_the_record_and_the_cookie(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """POST /logout deletes the server-side record (not just empties it) and expires the cookie."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    session_id = browser.session_id
    response = _sign_out(browser, gatehouse)
    assert gatehouse.session_record(session_id) is None
    assert gatehouse.session_records() == {}
    expired = set_cookie(response, browser.cookie_name)[browser.cookie_name]
    assert expired.value == "" and (expired["max-age"] == "0" or "1970" in expired["expires"])
    assert browser.session_id is None


def test_logout_deletes_the_record_even_when_a_flash_is_added(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Something adds a flash message on the way out: the record still goes, nothing revives it."""
    app = gatehouse.configure()

    @app.after_request
    def flash_on_logout(response: Response) -> Response:
        if request.endpoint == "auth.logout":
            flash("Come back soon.", "success")
        return response

    browser = gatehouse.browser()
    browser.sign_in("alice")
    session_id = browser.session_id
    _sign_out(browser, gatehouse)
    assert gatehouse.session_record(session_id) is None
    assert gatehouse.session_records() == {}


def test_a_copied_cookie_opens_nothing_after_logout(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Someone kept a copy of the cookie: after logout it opens no page and revives no record."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    copied = browser.session_id
    _sign_out(browser, gatehouse)

    thief = gatehouse.browser()
    thief.set_session_id(copied)
    for path in ("/profile", "/dashboard"):
        response = thief.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
    assert thief.signed_in_as() is None
    assert gatehouse.session_records() == {}
    assert provider.hits("/userinfo") == 1


def test_logout_is_post_only(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A GET (a link or an image on another site) cannot sign anyone out."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    assert browser.get("/logout").status_code == 405
    assert browser.signed_in_as() == "Alice"
