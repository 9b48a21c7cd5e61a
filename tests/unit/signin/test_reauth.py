"""recent_sign_in_required: a sensitive action needs an authentication at most N seconds old.

Against the mocked provider: the redirect carries max_age (and prompt=login where asked), the
session is kept, and the callback accepts only the same user with a fresh `auth_time`. Hostile
cases: another user's ID token, a replayed state, a stale or missing auth_time (a provider that
ignores max_age), an auth_time from the future, an attacker-chosen resume URL, a session that
ended meanwhile, JSON callers, and no redirect loop.
"""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sessions.lifecycle import record_auth_time
from sessions.store import StoredSession, session_store
from sessions.user import current_session, login_required
from signin import reauth
from signin.callback import LoginResult
from signin.reauth import is_recent, recent_sign_in_required, record_reauthentication
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    queued_audit_events,
    run_queued_jobs,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import ISSUER, MockProvider, authorize_params, callback_query

sensitive = Blueprint("sensitive", __name__)


@sensitive.get("/sensitive")
@recent_sign_in_required(max_age=300)
def page() -> str:
    """A page that needs a recent authentication."""
    return f"sensitive page, authenticated at {current_session().auth_time}"


@sensitive.get("/sensitive/confirm")
@login_required
def confirm() -> str:
    """The confirmation page of the POST action."""
    return "confirm the action"


@sensitive.post("/sensitive/do")
@recent_sign_in_required(max_age=300, confirm_endpoint="sensitive.confirm")
def do() -> str:
    """A sensitive POST action."""
    return "action done"


@sensitive.get("/sensitive/strict")
@recent_sign_in_required(max_age=60, prompt_login=True)
def strict() -> str:
    """A page that also asks the provider to show its sign-in form."""
    return "strict page"


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """The testing app with the sensitive views above."""
    built = make_app()
    built.register_blueprint(sensitive)
    return built


def signed_in_at(client: FlaskClient, provider: MockProvider, auth_time: float, subject: str = "alice") -> None:
    """Sign `subject` in with an ID token whose auth_time is `auth_time`."""
    landed = sign_in(client, provider, subject, auth_time=int(auth_time))
    assert landed.status_code == 302, landed.get_data(as_text=True)


def reauthenticate(
    client: FlaskClient, provider: MockProvider, start: TestResponse, subject: str = "alice", **claims: Any
) -> TestResponse:
    """Follow the redirect to the provider, authenticate `subject` there, and come back to the callback."""
    assert start.status_code == 303, start.get_data(as_text=True)
    authorize_url = start.headers["Location"]
    code = provider.approve(authorize_url, subject, **claims)
    return client.get(f"/auth/callback?{callback_query(authorize_url, code=code)}")


def test_a_recent_authentication_runs_the_view(client: FlaskClient, provider: MockProvider) -> None:
    signed_in_at(client, provider, time.time() - 10)
    answer = client.get("/sensitive")
    assert answer.status_code == 200
    assert "sensitive page" in answer.get_data(as_text=True)


def test_an_anonymous_visitor_signs_in_first(client: FlaskClient) -> None:
    answer = client.get("/sensitive")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=/sensitive")


def test_an_old_authentication_goes_to_the_provider_with_max_age_and_keeps_the_session(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    before = session_id(app, client)
    start = client.get("/sensitive?tab=2")
    assert start.status_code == 303
    params = authorize_params(start.headers["Location"])
    assert start.headers["Location"].startswith(f"{provider.issuer}/authorize?")
    assert params["max_age"] == "300"
    assert "prompt" not in params
    assert params["code_challenge_method"] == "S256" and params["nonce"] and params["state"]
    assert client.get("/").status_code == 200, "still signed in while re-authenticating"

    fresh = int(time.time())
    back = reauthenticate(client, provider, start, auth_time=fresh)
    assert back.status_code == 303
    assert back.headers["Location"] == "/sensitive?tab=2", "a GET resumes where it was going"
    assert session_id(app, client) == before, "the same session: re-authentication signs no one out or in"
    answer = client.get("/sensitive?tab=2")
    assert answer.status_code == 200
    assert f"authenticated at {fresh}" in answer.get_data(as_text=True)


def test_prompt_login_is_sent_where_the_view_asks(client: FlaskClient, provider: MockProvider) -> None:
    signed_in_at(client, provider, time.time() - 120)
    params = authorize_params(client.get("/sensitive/strict").headers["Location"])
    assert (params["max_age"], params["prompt"]) == ("60", "login")


def test_a_post_resumes_at_its_confirmation_page_and_is_not_replayed(
    client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.post("/sensitive/do", data={"csrf_token": signed_in_page_token(client)})
    assert start.status_code == 303
    back = reauthenticate(client, provider, start, auth_time=int(time.time()))
    assert back.headers["Location"] == "/sensitive/confirm"
    # Now recent enough: the user confirms again, and the action runs.
    done = client.post("/sensitive/do", data={"csrf_token": signed_in_page_token(client)})
    assert done.status_code == 200
    assert done.get_data(as_text=True) == "action done"


def test_a_provider_that_ignores_max_age_does_not_let_a_stale_authentication_through(
    client: FlaskClient, provider: MockProvider
) -> None:
    old = int(time.time() - 3600)
    signed_in_at(client, provider, old)
    start = client.get("/sensitive")
    back = reauthenticate(client, provider, start, auth_time=old)  # the provider kept its old session
    assert back.status_code == 303
    assert back.headers["Location"] == "/auth/failed?reason=reauth_stale"
    failed = client.get(back.headers["Location"])
    assert "did not confirm that you signed in again" in failed.get_data(as_text=True)
    assert "Location" not in failed.headers, "a refusal is a page, never a redirect back round (no loop)"
    assert client.get("/").status_code == 200, "still signed in"
    assert client.get("/sensitive").status_code == 303, "and still not recent enough"


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (299, True), (301, False), (-30, True), (-3600, False)],
    ids=["now", "just inside", "just outside", "slightly ahead (clock skew)", "far in the future"],
)
def test_auth_time_must_be_at_most_max_age_old(age: int, accepted: bool) -> None:
    now = 1_800_000_000
    assert is_recent(now - age, 300, now) is accepted


@pytest.mark.parametrize("value", [None, "1800000000", True, float("nan"), float("inf"), [1800000000]])
def test_auth_time_must_be_a_number(value: Any) -> None:
    assert not is_recent(value, 300, 1_800_000_000)


@pytest.mark.parametrize("auth_time", [None, "now", True], ids=["missing", "text", "boolean"])
def test_a_missing_or_malformed_auth_time_is_refused(
    client: FlaskClient, provider: MockProvider, auth_time: Any
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    provider.users["alice"].pop("auth_time")
    start = client.get("/sensitive")
    claims = {} if auth_time is None else {"auth_time": auth_time}
    back = reauthenticate(client, provider, start, **claims)
    assert back.headers["Location"] == "/auth/failed?reason=reauth_stale"
    assert client.get("/sensitive").status_code == 303


def test_another_user_s_authentication_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    before = session_id(app, client)
    start = client.get("/sensitive")
    back = reauthenticate(client, provider, start, subject="mallory", auth_time=int(time.time()))
    assert back.headers["Location"] == "/auth/failed?reason=reauth_other_user"
    assert session_id(app, client) == before
    home = client.get("/").get_data(as_text=True)
    assert "Alice" in home and "Mallory" not in home, "still signed in as alice, not as the other user"
    assert client.get("/sensitive").status_code == 303


def test_a_replayed_state_is_refused(client: FlaskClient, provider: MockProvider) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get("/sensitive")
    authorize_url = start.headers["Location"]
    code = provider.approve(authorize_url, "alice", auth_time=int(time.time()))
    query = callback_query(authorize_url, code=code)
    assert client.get(f"/auth/callback?{query}").headers["Location"] == "/sensitive"
    replayed = client.get(f"/auth/callback?{query}")
    assert replayed.headers["Location"] == "/auth/failed?reason=expired"


def test_a_state_started_by_another_browser_is_useless(app: Flask, provider: MockProvider) -> None:
    victim, attacker = app.test_client(), app.test_client()
    signed_in_at(victim, provider, time.time() - 3600)
    signed_in_at(attacker, provider, time.time() - 3600, subject="mallory")
    start = attacker.get("/sensitive")
    authorize_url = start.headers["Location"]
    code = provider.approve(authorize_url, "mallory", auth_time=int(time.time()))
    # The attacker's callback URL opened in the victim's browser: the state lives in the attacker's session.
    landed = victim.get(f"/auth/callback?{callback_query(authorize_url, code=code)}")
    assert landed.headers["Location"] == "/auth/failed?reason=expired"
    assert victim.get("/sensitive").status_code == 303, "the victim's session is not made recent"


@pytest.mark.parametrize(
    "path",
    ["/sensitive?next=https://evil.example", "/sensitive?x=//evil.example"],
)
def test_the_resume_url_is_the_request_s_own_local_path(client: FlaskClient, provider: MockProvider, path: str) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get(path)
    back = reauthenticate(client, provider, start, auth_time=int(time.time()))
    location = back.headers["Location"]
    assert location.startswith("/sensitive?"), "only the protected page itself, never a URL it names"


def test_an_attacker_cannot_choose_the_resume_url_through_the_callback(
    client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get("/sensitive")
    authorize_url = start.headers["Location"]
    code = provider.approve(authorize_url, "alice", auth_time=int(time.time()))
    query = callback_query(authorize_url, code=code, next="https://evil.example/")
    back = client.get(f"/auth/callback?{query}")
    assert back.headers["Location"] == "/sensitive"


def test_a_session_that_ended_meanwhile_is_not_revived(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get("/sensitive")
    authorize_url = start.headers["Location"]
    # Signed out elsewhere (another tab) while at the provider: the record, and the pending state, are gone.
    sid = session_id(app, client)
    assert sid is not None
    user, member = sid.split(".")
    fake_redis.delete(f"gh:{{{user}}}:s:{member}")
    code = provider.approve(authorize_url, "alice", auth_time=int(time.time()))
    back = client.get(f"/auth/callback?{callback_query(authorize_url, code=code)}")
    assert back.headers["Location"].startswith("/auth/failed?reason=")
    assert not fake_redis.exists(f"gh:{{{user}}}:s:{member}"), "no stray session hash appears"
    assert client.get("/sensitive").status_code == 302, "signed out: sign in first"


def test_a_json_caller_gets_a_401_not_a_redirect(client: FlaskClient, provider: MockProvider) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    answer = client.get("/sensitive", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "recent sign-in required", "max_age": 300}


def test_a_normal_sign_in_is_unchanged_by_a_pending_re_authentication(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    client.get("/sensitive")  # a re-authentication pending in this session
    start = client.get("/login?next=/profile")
    code = provider.approve(start.headers["Location"], "bob", auth_time=int(time.time()))
    landed = client.get(f"/auth/callback?{callback_query(start.headers['Location'], code=code)}")
    assert landed.headers["Location"] == "/profile"
    assert "Bob" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("max_age", [0, -5, 1.5, "300"])
def test_max_age_must_be_positive_whole_seconds(max_age: Any) -> None:
    with pytest.raises(ValueError, match="max_age"):
        recent_sign_in_required(max_age=max_age)


def test_the_auth_time_is_never_written_to_a_session_that_is_gone(app: Flask, fake_redis: RecordingRedis) -> None:
    stored = StoredSession({}, sid="x")
    stored.user, stored.member = "u" * 20, "r" * 43
    with app.app_context():
        assert record_auth_time(stored, 1_800_000_000, None, 1_800_000_000) is False
    assert fake_redis.keys("gh:*") == []
    assert stored.auth_time is None


def test_the_auth_time_is_set_by_its_script_in_sessions_lua_even_after_a_script_flush(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """set_auth_time.lua runs by EVALSHA like the other session scripts, and reloads itself after SCRIPT FLUSH."""
    signed_in_at(client, provider, time.time() - 3600)
    sid = session_id(app, client)
    assert sid is not None
    user, member = sid.split(".")
    stored = StoredSession({}, sid=sid)
    stored.user, stored.member = user, member
    fake_redis.script_flush()  # a restarted Redis has forgotten every script (NOSCRIPT, then a reload)
    fake_redis.commands.clear()
    with app.app_context():
        sha = session_store(app).scripts.set_auth_time.sha
        assert record_auth_time(stored, 1_800_000_000, None, 1_800_000_000) is True
    sent = list(fake_redis.commands)
    assert [command[0] for command in sent] == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]  # never a plain EVAL
    assert sent[0][1] == sent[2][1] == sha
    assert fake_redis.hget(f"gh:{{{user}}}:s:{member}", "at") == b"1800000000"
    assert stored.auth_time == 1_800_000_000


def test_with_redis_gone_the_callback_answers_503_and_the_attempt_can_finish_later(
    client: FlaskClient, provider: MockProvider, redis_server: fakeredis.FakeServer
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get("/sensitive")
    authorize_url = start.headers["Location"]
    code = provider.approve(authorize_url, "alice", auth_time=int(time.time()))
    callback = f"/auth/callback?{callback_query(authorize_url, code=code)}"
    redis_server.connected = False
    assert client.get(callback).status_code == 503
    assert all(body.get("code") != code for body in provider.token_requests), "nothing redeemed meanwhile"
    redis_server.connected = True
    assert client.get(callback).headers["Location"] == "/sensitive"
    assert client.get("/sensitive").status_code == 200


def test_two_tabs_re_authenticating_at_once_both_succeed(client: FlaskClient, provider: MockProvider) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    first, second = client.get("/sensitive?tab=1"), client.get("/sensitive?tab=2")
    codes = [
        provider.approve(start.headers["Location"], "alice", auth_time=int(time.time())) for start in (first, second)
    ]
    for start, code, target in zip((first, second), codes, ("/sensitive?tab=1", "/sensitive?tab=2"), strict=True):
        back = client.get(f"/auth/callback?{callback_query(start.headers['Location'], code=code)}")
        assert back.headers["Location"] == target
    assert client.get("/sensitive").status_code == 200


def reauth_events(app: Flask) -> list[tuple[str | None, str | None, str | None]]:
    """The queued `reauthenticated` audit events: (outcome, subject, session handle), oldest first."""
    return [
        (event["outcome"], event["subject"], event["session_handle"])
        for event in queued_audit_events(app)
        if event["kind"] == "reauthenticated"
    ]


def session_handle(app: Flask, client: FlaskClient, fake_redis: RecordingRedis) -> str:
    """The handle of the client's session (what audit events name it by)."""
    sid = session_id(app, client)
    assert sid is not None
    handle: str = stored_session(app, fake_redis, sid)["handle"]
    return handle


def test_a_successful_re_authentication_is_audited_in_the_user_s_trail(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    handle = session_handle(app, client, fake_redis)
    assert reauth_events(app) == [], "starting one records nothing: only its end is an event"
    back = reauthenticate(client, provider, client.get("/sensitive"), auth_time=int(time.time()))
    assert back.status_code == 303
    assert reauth_events(app) == [("success", "alice", handle)]
    [event] = [event for event in queued_audit_events(app) if event["kind"] == "reauthenticated"]
    assert event["request_id"] == back.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("subject", "auth_age", "kind"),
    [("alice", 3600, "reauth_stale"), ("mallory", 0, "reauth_other_user")],
    ids=["stale auth_time", "another user"],
)
def test_a_refused_re_authentication_is_audited_with_its_kind_for_the_session_s_user(
    app: Flask,
    client: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    subject: str,
    auth_age: int,
    kind: str,
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    handle = session_handle(app, client, fake_redis)
    start = client.get("/sensitive")
    back = reauthenticate(client, provider, start, subject=subject, auth_time=int(time.time() - auth_age))
    assert back.headers["Location"] == f"/auth/failed?reason={kind}"
    # In alice's trail (her session asked), never in the other user's; and not as a sign-in.
    assert reauth_events(app) == [(kind, "alice", handle)]
    assert [event["kind"] for event in queued_audit_events(app)] == ["sign_in", "reauthenticated"]


def test_a_session_that_ends_during_its_re_authentication_is_audited_as_signed_out(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    handle = session_handle(app, client, fake_redis)
    start = client.get("/sensitive")
    # Signed out elsewhere while the callback runs: the auth time finds no session to go to.
    monkeypatch.setattr(reauth, "record_auth_time", lambda stored, auth_time, provider_sid, issued_at: False)
    back = reauthenticate(client, provider, start, auth_time=int(time.time()))
    assert back.headers["Location"] == "/auth/failed?reason=reauth_signed_out"
    assert reauth_events(app) == [("reauth_signed_out", "alice", handle)]


def test_a_re_authentication_finished_under_another_user_s_session_is_not_put_in_their_trail(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    start = client.get("/sensitive")
    # Meanwhile, in another tab of the same browser, bob signs in: the session (and alice's state with it) is his.
    signed_in_at(client, provider, time.time(), subject="bob")
    back = reauthenticate(client, provider, start, auth_time=int(time.time()))
    assert back.headers["Location"] == "/auth/failed?reason=expired"
    failures = [event for event in queued_audit_events(app) if event["outcome"] != "success"]
    assert [(event["kind"], event["outcome"], event["subject"]) for event in failures] == [("sign_in", "expired", None)]


def test_a_re_authentication_event_without_the_asking_session_names_no_one(app: Flask) -> None:
    """Defensive: were the asking user's session no longer this request's, the event names no user or session."""
    result = LoginResult(
        claims={}, tokens={}, next_path="/", provider="oidc", reauthentication={"user": "u" * 20, "max_age": 300}
    )
    with app.test_request_context("/auth/callback"):
        app.preprocess_request()
        record_reauthentication(result, "reauth_signed_out")
    [event] = queued_audit_events(app)
    assert (event["kind"], event["outcome"]) == ("reauthenticated", "reauth_signed_out")
    assert (event["subject"], event["session_handle"], event["issuer"]) == (None, None, ISSUER)


def test_a_confirmed_re_authentication_shows_in_the_user_s_activity(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    signed_in_at(client, provider, time.time() - 3600)
    reauthenticate(client, provider, client.get("/sensitive"), auth_time=int(time.time()))
    run_queued_jobs(app)
    page = client.get("/sessions").get_data(as_text=True)
    assert "Confirmed the sign-in for a sensitive action" in page
