"""Flask-Login wiring: `current_user` and `login_required` from the server-side session.

Code written for Flask-Login works (current_user.is_authenticated, get_id, login_required,
login_manager.unauthorized, logout_user), its user comes from the session the store read
(no SQL, no extra Redis command), and Flask-Login's own ways in are shut: remember-me
cookies, `_user_id` planted in session data, session protection's writes, LOGIN_DISABLED
from the environment.
"""

from __future__ import annotations

from pathlib import Path

import flask_login
import pytest
from flask import Blueprint, Flask, current_app, jsonify, render_template
from flask.testing import FlaskClient
from flask_login import current_user, login_required

from sessions.user import CurrentUser, SessionLoginManager, current_session
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    counting_queries,
    csrf_token,
    rewrite_session,
    session_exists,
    session_id,
    session_keys,
    sign_in,
    stored_session,
)
from tests.unit.mock_provider import MockProvider

ROOT = Path(__file__).resolve().parents[3]

# A blueprint as a team would write it for any Flask-Login app.
flask_login_code = Blueprint("written_for_flask_login", __name__)


@flask_login_code.get("/whoami")
@login_required
def whoami() -> object:
    """Flask-Login's current_user, as any extension would read it."""
    return jsonify(
        authenticated=current_user.is_authenticated,
        active=current_user.is_active,
        anonymous=current_user.is_anonymous,
        id=current_user.get_id(),
        name=current_user.display_name,
    )


@flask_login_code.get("/anyone")
def anyone() -> object:
    """A page anyone may see, reporting who Flask-Login thinks they are."""
    return jsonify(authenticated=current_user.is_authenticated, id=current_user.get_id())


@flask_login_code.get("/greeting")
def greeting() -> str:
    """A template reading current_user."""
    return render_template("home/index.html")


@flask_login_code.get("/ask-to-sign-in")
def ask_to_sign_in() -> object:
    """What extensions do when they need a user: login_manager.unauthorized()."""
    return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]


@flask_login_code.post("/sign-me-out")
def sign_me_out() -> str:
    """Flask-Login's logout_user(), as code written for Flask-Login calls it."""
    flask_login.logout_user()
    return f"signed out: {current_user.is_anonymous}"


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """A testing app with the Flask-Login blueprint mounted."""
    built = make_app()
    built.register_blueprint(flask_login_code)
    return built


@pytest.fixture
def alice(app: Flask, provider: MockProvider) -> FlaskClient:
    """Alice, signed in (one page seen)."""
    client = app.test_client()
    assert sign_in(client, provider, "alice").status_code == 302
    assert client.get("/").status_code == 200
    return client


def test_the_login_manager_is_gatehouses(app: Flask) -> None:
    """app.login_manager is the session-backed one: no session protection, /login as its view."""
    manager = app.login_manager  # type: ignore[attr-defined]
    assert isinstance(manager, SessionLoginManager)
    assert manager.login_view == "auth.login"
    assert manager.session_protection is None
    assert manager._update_remember_cookie not in app.after_request_funcs[None]


def test_current_user_is_the_sessions_user(app: Flask, alice: FlaskClient, fake_redis: RecordingRedis) -> None:
    """Signed in: current_user is Alice, with the session's opaque user tag as id (never her subject)."""
    body = alice.get("/whoami").get_json()
    assert body["authenticated"] is True and body["active"] is True and body["anonymous"] is False
    assert body["name"] == "Alice"
    with app.test_request_context(
        "/", headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={session_id(app, alice)}"}
    ):
        app.preprocess_request()
        assert body["id"] == current_session().user
    assert body["id"] and "alice" not in body["id"]


def test_no_query_and_no_extra_redis_command(app: Flask, alice: FlaskClient, fake_redis: RecordingRedis) -> None:
    """Loading the user costs nothing beyond the session read: no SQL, one Redis command per page."""
    with counting_queries(app) as statements:
        fake_redis.commands.clear()
        assert alice.get("/whoami").get_json()["name"] == "Alice"
        assert "Alice" in alice.get("/").get_data(as_text=True)
    assert statements == []
    assert [command[0] for command in fake_redis.commands] == ["EVALSHA", "EVALSHA"]


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    """login_required: /login with a local next for pages, a JSON 401 for API callers; current_user is anonymous."""
    assert client.get("/anyone").get_json() == {"authenticated": False, "id": None}
    page = client.get("/whoami?tab=1")
    assert page.status_code == 302
    assert page.location == "/login?next=/whoami?tab%3D1"
    api = client.get("/whoami", headers={"Accept": "application/json"})
    assert (api.status_code, api.get_json()) == (401, {"error": "sign-in required"})
    # Code that asks Flask-Login for a sign-in gets the same redirect.
    asked = client.get("/ask-to-sign-in")
    assert (asked.status_code, asked.location) == (302, "/login?next=/ask-to-sign-in")


def test_unauthorized_does_not_start_a_session(client: FlaskClient, fake_redis: RecordingRedis) -> None:
    """No flash message, no anonymous session stored, no cookie for a refused visitor."""
    fake_redis.commands.clear()
    response = client.get("/whoami")
    assert response.status_code == 302
    assert "Set-Cookie" not in response.headers
    assert fake_redis.commands == []  # no cookie, so not even a read
    assert session_keys(fake_redis) == []


def test_templates_see_flask_logins_current_user(alice: FlaskClient, client: FlaskClient) -> None:
    """The same template greets Alice, and offers sign-in to an anonymous visitor."""
    assert "Welcome, Alice" in alice.get("/greeting").get_data(as_text=True)
    assert "Welcome to Gatehouse" in client.get("/greeting").get_data(as_text=True)


def test_templates_never_reach_into_the_session() -> None:
    """Templates read the user through current_user only."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert "session." not in text and "session[" not in text and "{{ session" not in text, template


@pytest.mark.parametrize("kind", ["garbage", "well-formed", "signed with the app's key"])
def test_a_remember_me_cookie_changes_nothing(
    app: Flask, alice: FlaskClient, client: FlaskClient, fake_redis: RecordingRedis, kind: str
) -> None:
    """A stray or forged `remember_token` neither signs anyone in nor out, and no remember cookie is ever set."""
    with app.test_request_context():
        value = {
            "garbage": "garbage",
            "well-formed": "someone-else|" + "0" * 128,
            "signed with the app's key": flask_login.encode_cookie("someone-else"),  # as an insider could make
        }[kind]
    for browser in (alice, client):
        browser.set_cookie("remember_token", value)
    fake_redis.commands.clear()
    signed_in, anonymous = alice.get("/whoami"), client.get("/anyone")
    assert signed_in.get_json()["name"] == "Alice"
    assert anonymous.get_json() == {"authenticated": False, "id": None}
    for response in (signed_in, anonymous):
        assert "remember_token" not in response.headers.get("Set-Cookie", "")
    # Each page read its session once and wrote nothing.
    assert [command[0] for command in fake_redis.commands] == ["EVALSHA"]


def test_a_user_id_planted_in_session_data_is_ignored(
    app: Flask, alice: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Flask-Login's `_user_id` in the session's data does not choose the user: the session's user does."""
    sid = session_id(app, alice)
    assert sid
    rewrite_session(app, fake_redis, sid, _user_id="bob-tag", _fresh=True)
    body = alice.get("/whoami").get_json()
    assert body["name"] == "Alice" and body["id"] != "bob-tag"
    anonymous = app.test_client()
    assert anonymous.get("/anyone").get_json()["authenticated"] is False


def test_another_address_or_browser_writes_nothing(app: Flask, alice: FlaskClient, fake_redis: RecordingRedis) -> None:
    """Session protection is off: a new User-Agent or address neither signs out nor rewrites the session."""
    sid = session_id(app, alice)
    before = stored_session(app, fake_redis, sid)
    fake_redis.commands.clear()
    moved = alice.get("/whoami", headers={"User-Agent": "Other/1.0"}, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert moved.get_json()["name"] == "Alice"
    assert [command[0] for command in fake_redis.commands] == ["EVALSHA"]
    after = stored_session(app, fake_redis, sid)
    assert before is not None and after is not None
    assert not {"_fresh", "_id", "_user_id"} & set(after)


def test_logout_user_ends_this_session(app: Flask, alice: FlaskClient, fake_redis: RecordingRedis) -> None:
    """flask_login.logout_user() deletes the session record and clears the cookie; the next page is anonymous."""
    sid = session_id(app, alice)
    assert sid and session_exists(fake_redis, sid)
    response = alice.post("/sign-me-out", data={"csrf_token": signed_in_token(alice)})
    assert response.get_data(as_text=True) == "signed out: True"
    assert not session_exists(fake_redis, sid)
    assert session_id(app, alice) is None
    assert alice.get("/anyone").get_json()["authenticated"] is False


def test_logout_user_when_signed_out_stores_nothing(app: Flask, fake_redis: RecordingRedis) -> None:
    """An anonymous logout_user(), even with a remember-me cookie, stores no session and sets no cookie."""
    with app.test_request_context("/", headers={"Cookie": "remember_token=garbage"}):
        app.preprocess_request()
        flask_login.logout_user()
        response = app.process_response(app.response_class("signed out"))
    assert "Set-Cookie" not in response.headers
    assert session_keys(fake_redis) == []


def test_login_disabled_from_the_environment_does_nothing(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask-Login's LOGIN_DISABLED switch is not a setting: an environment variable cannot turn protection off."""
    monkeypatch.setenv("LOGIN_DISABLED", "1")
    app = make_app()
    assert not app.config.get("LOGIN_DISABLED")
    assert app.test_client().get("/profile").status_code == 302


def test_anonymous_user_follows_the_protocol() -> None:
    """The anonymous CurrentUser answers like Flask-Login's AnonymousUserMixin."""
    anonymous = CurrentUser()
    mixin = flask_login.AnonymousUserMixin()
    assert (anonymous.is_authenticated, anonymous.is_active, anonymous.is_anonymous, anonymous.get_id()) == (
        mixin.is_authenticated,
        mixin.is_active,
        mixin.is_anonymous,
        mixin.get_id(),
    )
    assert (anonymous.display_name, anonymous.email, anonymous.locale, anonymous.timezone) == (None, None, "en", "UTC")


def signed_in_token(client: FlaskClient) -> str:
    """The CSRF token of a signed-in page's sign-out form."""
    return csrf_token(client.get("/").get_data(as_text=True))
