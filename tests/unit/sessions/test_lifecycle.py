"""sessions/lifecycle.py and the per-user state: disabled users, "not valid before", the per-user cap,
and one profile shared by every browser of a user."""

from __future__ import annotations

import re
import time

from flask import Flask
from flask.testing import FlaskClient

from accounts.persistence import persist_user
from sessions import keys
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    assert_sent_to_sign_in,
    queued_records,
    rewrite_session,
    session_exists,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import ISSUER, MockProvider

ALICE = keys.user_tag(ISSUER, "alice")


def browser(app: Flask, provider: MockProvider, subject: str = "alice") -> FlaskClient:
    """A new browser where `subject` has signed in."""
    client = app.test_client()
    assert sign_in(client, provider, subject).status_code == 302
    return client


def test_disabling_a_user_ends_their_sessions_and_refuses_sign_in(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    first, second = browser(app, provider), browser(app, provider)
    bob = browser(app, provider, "bob")
    with app.app_context():
        persist_user(queued_records(app)[0])  # the worker stored alice: now she can be disabled
    result = app.test_cli_runner().invoke(args=["users", "disable", "alice", "--issuer", ISSUER])
    assert result.exit_code == 0, result.output
    assert "2 session(s) ended" in result.output

    for client in (first, second):
        assert not session_exists(fake_redis, session_id(app, client))
        assert_sent_to_sign_in(client)
    assert bob.get("/profile").status_code == 200  # other users are untouched

    again = app.test_client()
    refused = sign_in(again, provider)
    assert refused.status_code == 303
    assert refused.location == "/auth/failed?reason=disabled"
    assert "has been disabled" in again.get(refused.location).get_data(as_text=True)
    assert_sent_to_sign_in(again)

    enabled = app.test_cli_runner().invoke(args=["users", "enable", "alice", "--issuer", ISSUER])
    assert enabled.exit_code == 0, enabled.output
    assert browser(app, provider).get("/profile").status_code == 200


def test_a_disabled_users_session_is_invalid_on_the_next_request(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    # Only the flag: even a session record that is still there (say its index entry was lost) is refused.
    fake_redis.hset(keys.user_key(ALICE), "off", 1)
    assert session_exists(fake_redis, sid)
    assert_sent_to_sign_in(signed_in)
    assert not session_exists(fake_redis, sid)


def test_not_valid_before_ends_older_sessions_only(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    older = browser(app, provider)
    rewrite_session(app, fake_redis, session_id(app, older), created_at=time.time() - 120)
    fake_redis.hset(keys.user_key(ALICE), "nvb", time.time() - 60)
    newer = browser(app, provider)

    assert_sent_to_sign_in(older)
    assert not session_exists(fake_redis, session_id(app, older))
    assert newer.get("/profile").status_code == 200


def test_the_per_user_cap_ends_the_oldest_sign_in(make_app: AppFactory, provider: MockProvider) -> None:
    app = make_app(SESSIONS_PER_USER=2)
    oldest = browser(app, provider)
    middle = browser(app, provider)
    bob = browser(app, provider, "bob")
    assert oldest.get("/profile").status_code == 200
    newest = browser(app, provider)

    assert_sent_to_sign_in(oldest)
    for client in (middle, newest, bob):
        assert client.get("/profile").status_code == 200


def test_an_edit_in_one_browser_shows_in_the_other_on_its_next_page(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    client_a, client_b = browser(app, provider), browser(app, provider)
    assert 'value="Alice"' in client_b.get("/profile").get_data(as_text=True)

    form = {
        "csrf_token": signed_in_page_token(client_a),
        "display_name": "Alice Everywhere",
        "locale": "fr",
        "timezone": "Europe/Paris",
    }
    assert client_a.post("/profile", data=form).status_code == 302

    page = client_b.get("/profile").get_data(as_text=True)
    assert 'value="Alice Everywhere"' in page
    assert re.search(r'<option selected value="fr">|<option value="fr" selected>', page)
    assert "Alice Everywhere" in client_b.get("/").get_data(as_text=True)
    profile_a = stored_session(app, fake_redis, session_id(app, client_a))["profile"]
    profile_b = stored_session(app, fake_redis, session_id(app, client_b))["profile"]
    assert profile_a == profile_b
    assert profile_b["display_name"] == "Alice Everywhere"
