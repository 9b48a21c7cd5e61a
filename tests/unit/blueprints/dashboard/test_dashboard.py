"""/dashboard through the app: API data with the user's token; 401 twice signs out cleanly, outages do not."""

from __future__ import annotations

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, session_exists, session_id, session_keys, sign_in, stored_session
from tests.unit.mock_provider import MockProvider

API = "https://api.example.test/"
ME = f"{API}v1/me"
JSON = {"Accept": "application/json"}


@pytest.fixture
def api_app(make_app: AppFactory) -> Flask:
    """An app whose dashboard reads API_BASE_URL + API_DASHBOARD_PATH."""
    return make_app(API_BASE_URL=API, API_DASHBOARD_PATH="v1/me")


@pytest.fixture
def browser(api_app: Flask, provider: MockProvider) -> FlaskClient:
    """Alice, signed in to `api_app`."""
    client = api_app.test_client()
    assert sign_in(client, provider).status_code == 302
    return client


def access_token(app: Flask, redis: RecordingRedis, client: FlaskClient) -> str:
    """The access token in the browser's stored session."""
    return stored_session(app, redis, session_id(app, client))["tokens"]["access_token"]


def api_tokens(mock: responses.RequestsMock) -> list[str]:
    """The bearer tokens the API received, in order."""
    return [
        call.request.headers["Authorization"].removeprefix("Bearer ") for call in mock.calls if call.request.url == ME
    ]


def assert_signed_out(app: Flask, redis: RecordingRedis, sid: str, client: FlaskClient) -> None:
    """The session record is gone and the browser holds no session cookie."""
    assert not session_exists(redis, sid)
    assert session_keys(redis) == []
    assert session_id(app, client) is None
    assert client.get("/profile").location.startswith("/login")


def test_the_dashboard_shows_api_data_fetched_with_the_users_token(
    api_app: Flask, browser: FlaskClient, fake_redis: RecordingRedis, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, json={"plan": "gold", "access_token": "must-not-show"})
    page = browser.get("/dashboard")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "gold" in html
    assert "must-not-show" not in html
    assert api_tokens(mocked_http) == [access_token(api_app, fake_redis, browser)]

    as_json = browser.get("/dashboard", headers=JSON)
    assert as_json.get_json() == {"ok": True, "data": {"plan": "gold"}, "error": None}


def test_two_401s_end_the_session_and_send_the_browser_to_sign_in(
    api_app: Flask,
    browser: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    mocked_http: responses.RequestsMock,
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    sid = session_id(api_app, browser)
    old_token = access_token(api_app, fake_redis, browser)
    page = browser.get("/dashboard")
    assert page.status_code == 302
    assert page.location == "/login?reason=expired"
    cleared = page.headers["Set-Cookie"]
    assert cleared.startswith(api_app.config["SESSION_COOKIE_NAME"] + "=;")
    assert len(provider.refresh_grants()) == 1
    tokens = api_tokens(mocked_http)
    assert tokens[0] == old_token
    assert len(tokens) == 2
    assert tokens[1] != old_token
    assert_signed_out(api_app, fake_redis, sid, browser)
    assert "Your session has ended" in browser.get("/login?reason=expired").get_data(as_text=True)


def test_two_401s_answer_json_401_to_api_callers(
    api_app: Flask, browser: FlaskClient, fake_redis: RecordingRedis, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    sid = session_id(api_app, browser)
    answer = browser.get("/dashboard", headers=JSON)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "sign-in required"
    assert answer.get_json()["login_url"] == "/login"
    assert_signed_out(api_app, fake_redis, sid, browser)


def test_one_401_is_cured_by_a_refresh(
    api_app: Flask,
    browser: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    mocked_http: responses.RequestsMock,
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    mocked_http.add(responses.GET, ME, json={"plan": "gold"})
    old_token = access_token(api_app, fake_redis, browser)
    page = browser.get("/dashboard")
    assert page.status_code == 200
    assert "gold" in page.get_data(as_text=True)
    new_token = access_token(api_app, fake_redis, browser)
    assert new_token != old_token
    assert api_tokens(mocked_http) == [old_token, new_token]
    assert len(provider.refresh_grants()) == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"body": requests.ReadTimeout("slow")}, id="timeout"),
        pytest.param({"body": requests.ConnectionError("refused")}, id="unreachable"),
    ],
)
def test_api_outages_show_an_error_and_keep_the_user_signed_in(
    api_app: Flask,
    browser: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    mocked_http: responses.RequestsMock,
    answer: dict,
) -> None:
    mocked_http.add(responses.GET, ME, **answer)
    sid = session_id(api_app, browser)
    page = browser.get("/dashboard")
    assert page.status_code == 502
    assert 'data-testid="api-error"' in page.get_data(as_text=True)
    assert session_exists(fake_redis, sid)
    assert session_id(api_app, browser) == sid
    assert browser.get("/profile").status_code == 200
    assert provider.refresh_grants() == []

    as_json = browser.get("/dashboard", headers=JSON)
    assert as_json.status_code == 502
    assert as_json.get_json()["ok"] is False


def test_by_default_the_dashboard_reads_the_providers_userinfo(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    page = signed_in.get("/dashboard")
    assert page.status_code == 200
    assert "alice@example.test" in page.get_data(as_text=True)
    assert provider.userinfo_requests[-1] == access_token(app, fake_redis, signed_in)


def test_tokens_revoked_at_the_provider_sign_the_user_out(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    provider.revoke("alice")
    page = signed_in.get("/dashboard")
    assert page.status_code == 302
    assert page.location == "/login?reason=expired"
    assert_signed_out(app, fake_redis, sid, signed_in)


def test_anonymous_visitors_must_sign_in_for_the_dashboard(client: FlaskClient) -> None:
    assert client.get("/dashboard").location == "/login?next=/dashboard"
    assert client.get("/dashboard", headers=JSON).status_code == 401
