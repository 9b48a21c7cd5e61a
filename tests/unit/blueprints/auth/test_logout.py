"""POST /logout: CSRF-protected, deletes the session record and cookie, ends the provider session."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from flask import Flask, Response, flash
from flask.testing import FlaskClient

from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    rewrite_session,
    session_exists,
    session_id,
    session_keys,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import DROP, ISSUER, MockProvider, authorize_params


def assert_cookie_cleared(app: Flask, response: Response) -> None:
    """The response tells the browser to drop the session cookie."""
    cookies = [
        value
        for value in response.headers.getlist("Set-Cookie")
        if value.startswith(app.config["SESSION_COOKIE_NAME"] + "=")
    ]
    assert len(cookies) == 1
    assert "Expires=Thu, 01 Jan 1970" in cookies[0] or "Max-Age=0" in cookies[0]


def test_logout_deletes_the_record_clears_the_cookie_and_ends_the_provider_session(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    token = signed_in_page_token(signed_in)
    id_token = stored_session(app, fake_redis, sid)["tokens"]["id_token"]
    out = signed_in.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302
    assert out.location.startswith(f"{ISSUER}/logout?")
    params = authorize_params(out.location)
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == "http://localhost/login?reason=signed_out"
    assert not session_exists(fake_redis, sid)
    assert session_keys(fake_redis) == []
    assert_cookie_cleared(app, out)
    assert session_id(app, signed_in) is None
    assert signed_in.get("/profile").location.startswith("/login")


def test_a_flash_added_after_logout_does_not_revive_the_session(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()

    @app.after_request
    def say_goodbye(response: Response) -> Response:
        flash("Goodbye!")
        return response

    client = app.test_client()
    sign_in(client, provider)
    sid = session_id(app, client)
    out = client.post("/logout", data={"csrf_token": signed_in_page_token(client)})
    assert out.status_code == 302
    assert not session_exists(fake_redis, sid)
    assert session_keys(fake_redis) == []
    assert_cookie_cleared(app, out)


def test_logout_without_an_end_session_endpoint_returns_to_the_login_page(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.discovery_overrides = {"end_session_endpoint": DROP}
    app = make_app()
    client = app.test_client()
    sign_in(client, provider)
    out = client.post("/logout", data={"csrf_token": signed_in_page_token(client)})
    assert out.location == "http://localhost/login?reason=signed_out"
    assert session_keys(fake_redis) == []
    notice = client.get("/login?reason=signed_out")
    assert "You have been signed out." in notice.get_data(as_text=True)


def test_logout_without_the_csrf_token_changes_nothing(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    refused = signed_in.post("/logout")
    assert refused.status_code == 400
    assert session_exists(fake_redis, sid)
    assert signed_in.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert signed_in.get("/profile").status_code == 200


def test_logout_is_post_only_in_process(app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis) -> None:
    assert signed_in.get("/logout").status_code == 405
    assert session_exists(fake_redis, session_id(app, signed_in))


class SignedInUnderClientIdHint(NamedTuple):
    """An app with LOGOUT_HINT=client_id, a browser signed in to it, and that browser's session id."""

    app: Flask
    client: FlaskClient
    sid: str | None


@pytest.fixture
def client_id_hint(make_app: AppFactory, provider: MockProvider) -> SignedInUnderClientIdHint:
    """alice signed in to an app whose logout names the client instead of sending the ID token."""
    app = make_app(LOGOUT_HINT="client_id")
    client = app.test_client()
    sign_in(client, provider)
    return SignedInUnderClientIdHint(app, client, session_id(app, client))


def test_with_logout_hint_client_id_no_id_token_is_stored_and_sign_out_names_the_client(
    client_id_hint: SignedInUnderClientIdHint, fake_redis: RecordingRedis
) -> None:
    app, client, sid = client_id_hint
    tokens = stored_session(app, fake_redis, sid)["tokens"]
    assert tokens["id_token"] is None
    assert tokens["access_token"] and tokens["refresh_token"]
    out = client.post("/logout", data={"csrf_token": signed_in_page_token(client)})
    assert out.location.startswith(f"{ISSUER}/logout?")
    params = authorize_params(out.location)
    assert params["client_id"] == app.config["OIDC_CLIENT_ID"]
    assert "id_token_hint" not in params
    assert session_keys(fake_redis) == []


def test_a_refresh_under_logout_hint_client_id_does_not_store_the_new_id_token(
    client_id_hint: SignedInUnderClientIdHint, fake_redis: RecordingRedis
) -> None:
    app, client, sid = client_id_hint
    before = stored_session(app, fake_redis, sid)["tokens"]
    rewrite_session(app, fake_redis, sid, tokens={**before, "expires_at": 1.0})
    assert client.get("/dashboard").status_code == 200
    after = stored_session(app, fake_redis, sid)["tokens"]
    assert after["access_token"] != before["access_token"]
    assert after["id_token"] is None
