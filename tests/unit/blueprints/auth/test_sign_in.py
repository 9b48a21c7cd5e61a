"""Sign-in through the Flask test client against the mocked provider: the happy path and every refusal."""

from __future__ import annotations

import time
from typing import Any

import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from extensions import db
from sessions import keys
from tests.support.session_records import seed_profile
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    counting_queries,
    queued_records,
    session_exists,
    session_id,
    sign_in,
    start_login,
    stored_session,
)
from tests.unit.mock_provider import CLIENT_ID, DROP, ISSUER, MockProvider, authorize_params, callback_query


def signed_in_user(app: Flask, redis: RecordingRedis, client: FlaskClient) -> dict[str, Any] | None:
    """The user in the browser's stored session, or None."""
    return (stored_session(app, redis, session_id(app, client)) or {}).get("user")


def assert_friendly_refusal(client: FlaskClient, response: TestResponse, status: int = 400) -> str:
    """A sign-in problem page (the callback may redirect to it): the expected status, a message, no traceback."""
    if response.status_code in (302, 303) and response.location.startswith("/auth/failed"):
        response = client.get(response.location)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert 'data-testid="login-error"' in page
    assert "Traceback" not in page
    return page


def test_login_redirects_to_the_provider_with_pkce_state_and_nonce(client: FlaskClient) -> None:
    start = start_login(client, "/profile")
    assert start.location.startswith(f"{ISSUER}/authorize?")
    params = authorize_params(start.location)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://localhost/auth/callback"
    assert "openid" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256 digest
    assert len(params["state"]) >= 20
    assert len(params["nonce"]) >= 20
    assert start.headers["Cache-Control"] == "no-store"


def test_every_login_gets_its_own_state_nonce_and_challenge(client: FlaskClient) -> None:
    first = authorize_params(start_login(client).location)
    second = authorize_params(start_login(client).location)
    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name]


def test_callback_signs_in_under_a_new_session_id_without_touching_the_database(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client, "/profile?tab=1")
    before = session_id(app, client)
    assert before and session_exists(fake_redis, before)
    code = provider.approve(start.location, "alice", picture="https://img.example.test/alice.png")

    with counting_queries(app) as statements:
        landed = client.get(f"/auth/callback?{callback_query(start.location, code=code)}")
        no_queries = list(statements)
        with app.app_context():
            db.session.execute(text("SELECT 1"))  # proves the listener counts
    assert no_queries == []
    assert len(statements) == 1

    assert landed.status_code == 302
    assert landed.location == "/profile?tab=1"
    after = session_id(app, client)
    assert after and after != before
    assert not session_exists(fake_redis, before)

    stored = stored_session(app, fake_redis, after)
    assert stored["user"] == {
        "issuer": ISSUER,
        "subject": "alice",
        "email": "alice@example.test",
        "name": "Alice",
        "picture": "https://img.example.test/alice.png",
    }
    assert stored["profile"]["display_name"] == "Alice"
    assert stored["tokens"]["access_token"] in provider.access_tokens
    assert stored["tokens"]["refresh_token"] in provider.refresh_tokens
    assert stored["tokens"]["id_token"].count(".") == 2
    assert stored["tokens"]["expires_at"] > time.time()
    assert abs(stored["created_at"] - time.time()) < 60
    assert not any(key.startswith("_login_state_") for key in stored)

    records = queued_records(app)
    assert len(records) == 1
    assert (records[0]["issuer"], records[0]["subject"], records[0]["email"]) == (ISSUER, "alice", "alice@example.test")


def test_the_code_is_exchanged_with_the_pkce_verifier_and_client_secret(
    client: FlaskClient, provider: MockProvider
) -> None:
    assert sign_in(client, provider).status_code == 302
    # The mock answers only when the verifier hashes to the challenge and the client authenticated.
    (exchange,) = provider.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code_verifier"]
    assert client.get("/profile").status_code == 200


def test_next_pointing_elsewhere_lands_on_the_home_page(client: FlaskClient, provider: MockProvider) -> None:
    assert sign_in(client, provider, next_path="https://evil.example/steal").location == "/"


def test_a_returning_users_saved_profile_is_shown_without_a_database_read(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    first = app.test_client()
    sign_in(first, provider)
    profile = {"display_name": "Ally", "locale": "fr", "timezone": "Europe/Paris", "website": None, "bio": "hi"}
    seed_profile(fake_redis, ISSUER, "alice", {**profile, "version": 5})
    second = app.test_client()
    with counting_queries(app) as statements:
        sign_in(second, provider, worker=False)
    assert statements == []
    assert stored_session(app, fake_redis, session_id(app, second))["profile"] == {**profile, "version": 5}


def test_provider_error_shows_a_friendly_page(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client)
    refused = client.get(f"/auth/callback?{callback_query(start.location, error='access_denied')}")
    assert "declined" in assert_friendly_refusal(client, refused)
    assert signed_in_user(app, fake_redis, client) is None
    assert provider.token_requests == []
    assert queued_records(app) == []


def test_unknown_state_is_refused(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client)
    code = provider.approve(start.location)
    refused = client.get(f"/auth/callback?state=made-up-state&code={code}")
    assert_friendly_refusal(client, refused)
    assert signed_in_user(app, fake_redis, client) is None
    assert provider.token_requests == []


def test_a_callback_in_another_browser_is_refused(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client)
    code = provider.approve(start.location)
    # Login CSRF: the victim's browser never started this sign-in.
    victim = app.test_client()
    refused = victim.get(f"/auth/callback?{callback_query(start.location, code=code)}")
    assert_friendly_refusal(victim, refused)
    assert signed_in_user(app, fake_redis, victim) is None
    assert provider.token_requests == []


def test_a_replayed_callback_is_refused(app: Flask, client: FlaskClient, provider: MockProvider) -> None:
    start = start_login(client)
    callback = f"/auth/callback?{callback_query(start.location, code=provider.approve(start.location))}"
    assert client.get(callback).status_code == 302
    assert_friendly_refusal(client, client.get(callback))
    assert len(provider.token_requests) == 1
    assert len(queued_records(app)) == 1


def test_an_id_token_failing_validation_is_refused(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    for overrides in ({"aud": "another-client"}, {"nonce": "replayed-nonce"}, {"iss": "https://evil.example"}):
        provider.id_token_overrides = overrides
        assert_friendly_refusal(client, sign_in(client, provider))
        assert signed_in_user(app, fake_redis, client) is None
    assert queued_records(app) == []


def test_userinfo_for_another_subject_is_refused_in_process(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.userinfo_overrides = {"sub": "mallory"}
    assert_friendly_refusal(client, sign_in(client, provider))
    assert signed_in_user(app, fake_redis, client) is None
    assert queued_records(app) == []


def test_a_wrong_iss_response_parameter_is_refused(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client)
    code = provider.approve(start.location)
    refused = client.get(f"/auth/callback?{callback_query(start.location, code=code, iss='https://evil.example')}")
    assert_friendly_refusal(client, refused)
    assert signed_in_user(app, fake_redis, client) is None
    assert provider.token_requests == []


def test_a_refused_code_exchange_is_refused(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    start = start_login(client)
    refused = client.get(f"/auth/callback?{callback_query(start.location, code='never-issued')}")
    assert_friendly_refusal(client, refused)
    assert signed_in_user(app, fake_redis, client) is None


def test_discovery_naming_another_issuer_stops_sign_in(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.discovery_overrides = {"issuer": "https://evil.example"}
    app = make_app()
    client = app.test_client()
    refused = client.get("/login")
    assert_friendly_refusal(client, refused, 503)
    assert "evil.example" not in (refused.location or "")


def test_discovery_mismatch_at_the_callback_is_refused(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    starting_app = make_app()
    browser = starting_app.test_client()
    start = start_login(browser)
    code = provider.approve(start.location)
    provider.discovery_overrides = {"issuer": "https://evil.example"}
    # Another web process, which reads discovery afresh, receives the callback.
    finishing_app = make_app()
    other = finishing_app.test_client()
    cookie = browser.get_cookie(starting_app.config["SESSION_COOKIE_NAME"])
    other.set_cookie(cookie.key, cookie.value)
    refused = other.get(f"/auth/callback?{callback_query(start.location, code=code)}")
    assert_friendly_refusal(other, refused)
    assert signed_in_user(finishing_app, fake_redis, other) is None
    assert provider.token_requests == []


def test_an_unreachable_provider_shows_a_503_page(make_app: AppFactory, mocked_http: responses.RequestsMock) -> None:
    down = "https://down.example.test"
    mocked_http.add(responses.GET, f"{down}/.well-known/openid-configuration", body=requests.ConnectionError("down"))
    client = make_app(OIDC_ISSUER=down).test_client()
    assert_friendly_refusal(client, client.get("/login"), 503)


def test_production_cookie_is_secure_and_host_prefixed_in_process(make_app: AppFactory, provider: MockProvider) -> None:
    app = make_app(GATEHOUSE_ENV="production", PUBLIC_URL="https://localhost")
    client = app.test_client()
    start = client.get("/login", base_url="https://localhost")
    assert authorize_params(start.location)["redirect_uri"] == "https://localhost/auth/callback"
    code = provider.approve(start.location)
    landed = client.get(f"/auth/callback?{callback_query(start.location, code=code)}", base_url="https://localhost")
    assert landed.status_code == 302
    cookie = landed.headers["Set-Cookie"]
    assert cookie.startswith("__Host-gatehouse_session=")
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "; Path=/" in cookie
    assert "Domain=" not in cookie
    assert "SameSite=Lax" in cookie


def test_unsigned_userinfo_supplies_no_auth_time_or_provider_session(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Third pass: UserInfo is not signed, so when the ID token has no `auth_time` or `sid`, UserInfo's are not
    taken (an `auth_time` there would skip a re-authentication; a `sid` would tie the session to any logout)."""
    provider.id_token_overrides = {"auth_time": DROP, "sid": DROP}
    provider.userinfo_overrides = {"auth_time": int(time.time()), "sid": "from-userinfo"}
    landed = sign_in(client, provider)
    assert landed.status_code == 302
    sid = session_id(app, client)
    assert sid is not None
    user, member = keys.parse_sid(sid) or (None, "")
    record = fake_redis.hgetall(keys.session_key(user, member))
    assert record.get(b"at") in (None, b"")
    assert record.get(b"ps") in (None, b"")
