"""/sessions: the user's sessions listed with the current one marked; revoking one, or all others."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.unit.helpers import (
    RecordingRedis,
    session_exists,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import MockProvider

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
ROW = re.compile(r'<tr data-testid="session-row"( data-current="true")?>(.*?)</tr>', re.S)


def browser(app: Flask, provider: MockProvider, subject: str = "alice", user_agent: str | None = None) -> FlaskClient:
    """A new browser where `subject` has signed in."""
    client = app.test_client()
    if user_agent:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    assert sign_in(client, provider, subject).status_code == 302
    return client


def handle(app: Flask, redis: RecordingRedis, client: FlaskClient) -> str:
    """The public handle of the browser's session."""
    return stored_session(app, redis, session_id(app, client))["handle"]


def rows(html: str) -> list[tuple[bool, str]]:
    """(current?, row HTML) for each session listed."""
    return [(bool(current), body) for current, body in ROW.findall(html)]


def revoke(client: FlaskClient, target: str) -> int:
    """POST the revoke form for `target` with a valid CSRF token; return the status."""
    token = signed_in_page_token(client, "/sessions")
    return client.post(f"/sessions/{target}/revoke", data={"csrf_token": token}).status_code


def test_the_list_shows_every_session_of_the_user_with_the_current_one_marked(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    here = browser(app, provider)
    there = browser(app, provider, user_agent=FIREFOX)
    browser(app, provider, "bob")

    page = here.get("/sessions")
    assert page.status_code == 200
    listed = rows(page.get_data(as_text=True))
    assert len(listed) == 2  # bob's session is not alice's business
    assert [current for current, _ in listed] == [True, False]  # the current one first
    current_row, other_row = listed[0][1], listed[1][1]
    assert 'data-testid="current-session"' in current_row
    assert 'data-testid="current-session"' not in other_row
    assert "Firefox 128 on Windows" in other_row
    # Only the other session can be signed out from here, by its handle (never its id).
    assert f"/sessions/{handle(app, fake_redis, there)}/revoke" in other_row
    assert "revoke-session" not in current_row
    html = page.get_data(as_text=True)
    assert session_id(app, here) not in html
    assert session_id(app, there).split(".")[1] not in html

    mine_there = rows(there.get("/sessions").get_data(as_text=True))
    assert [current for current, _ in mine_there] == [True, False]
    assert "Firefox 128 on Windows" in mine_there[0][1]


def test_anonymous_visitors_must_sign_in_for_the_devices_page(client: FlaskClient) -> None:
    assert client.get("/sessions").location == "/login?next=/sessions"


def test_revoking_another_of_my_sessions_signs_it_out(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    here, there = browser(app, provider), browser(app, provider)
    gone = session_id(app, there)
    assert revoke(here, handle(app, fake_redis, there)) == 302
    assert not session_exists(fake_redis, gone)
    assert there.get("/profile").location.startswith("/login")
    page = here.get("/sessions").get_data(as_text=True)
    assert "That device has been signed out." in page
    assert len(rows(page)) == 1


def test_revoking_another_users_handle_is_404_and_changes_nothing(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice, alice_elsewhere = browser(app, provider), browser(app, provider)
    bob = browser(app, provider, "bob")
    signed_in_page_token(alice, "/sessions")  # her CSRF token is stored before the snapshot
    before = {
        client: stored_session(app, fake_redis, session_id(app, client)) for client in (alice, alice_elsewhere, bob)
    }

    assert revoke(alice, handle(app, fake_redis, bob)) == 404
    assert revoke(alice, "A" * 22) == 404  # well-formed, but nobody's
    assert revoke(alice, "not-a-handle") == 404
    assert revoke(alice, handle(app, fake_redis, alice)) == 404  # the current session: use "Sign out"

    for client, record in before.items():
        assert stored_session(app, fake_redis, session_id(app, client)) == record
        assert client.get("/profile").status_code == 200
    assert len(rows(bob.get("/sessions").get_data(as_text=True))) == 1


def test_revoking_needs_the_csrf_token(app: Flask, provider: MockProvider, fake_redis: RecordingRedis) -> None:
    here, there = browser(app, provider), browser(app, provider)
    signed_in_page_token(here, "/sessions")
    assert here.post(f"/sessions/{handle(app, fake_redis, there)}/revoke").status_code == 400
    assert here.post("/sessions/revoke-others", data={"csrf_token": "forged"}).status_code == 400
    assert there.get("/profile").status_code == 200


def test_signing_out_everywhere_else_keeps_only_this_session(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    others = [browser(app, provider), browser(app, provider)]
    here = browser(app, provider)
    bob = browser(app, provider, "bob")
    token = signed_in_page_token(here, "/sessions")
    assert here.post("/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    for client in others:
        assert client.get("/profile").location.startswith("/login")
    page = here.get("/sessions").get_data(as_text=True)
    assert "Signed out 2 other sessions." in page
    assert [current for current, _ in rows(page)] == [True]
    assert bob.get("/profile").status_code == 200


def test_redirects_never_followed_leave_at_most_five_messages_in_the_session(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Third pass, item 11: 20 sign-outs of the other devices whose redirects are never followed keep only the
    newest five "Signed out" messages in the session record (each kept its message before: 300 made 11.6 KB)."""
    client = browser(app, provider)
    token = signed_in_page_token(client, "/sessions")
    for _ in range(20):
        assert client.post("/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    flashes = stored_session(app, fake_redis, session_id(app, client))["_flashes"]
    assert len(flashes) == 5
    assert all(category == "success" for category, _ in flashes)
