"""The audit trail: which events are recorded, with what, and that recording never breaks a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import flask_login
import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from audit.events import build_event, record
from audit.jobs import prune_audit_events, store_audit_event
from extensions import db
from jobs.failures import PermanentJobFailure
from models.audit import AuditEvent
from models.outbox import OutboxJob
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
from tests.unit.mock_provider import ISSUER, MockProvider, callback_query

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

app_code = Blueprint("app_code", __name__)


@app_code.post("/app-signs-me-out")
def app_signs_me_out() -> str:
    """The app's own code signing the user out through Flask-Login, as extensions do."""
    flask_login.logout_user()
    return "signed out"


def stored_events(app: Flask) -> list[dict[str, Any]]:
    """Every audit event in the database, oldest first, as `audit list --json` prints them."""
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        return [row.to_dict() for row in rows]


def kinds(app: Flask) -> list[tuple[str, str | None]]:
    return [(event["kind"], event["outcome"]) for event in stored_events(app)]


def test_a_sign_in_is_recorded_with_who_which_session_where_and_which_request(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    client.environ_base |= {"HTTP_USER_AGENT": BROWSER, "REMOTE_ADDR": "203.0.113.9"}
    landed = sign_in(client, provider, "alice")
    [event] = stored_events(app)
    assert (event["kind"], event["outcome"]) == ("sign_in", "success")
    assert (event["issuer"], event["subject"]) == (ISSUER, "alice")
    assert event["session"] == stored_session(app, fake_redis, session_id(app, client))["handle"]
    assert event["address"] == "203.0.113.9"
    assert event["user_agent"] == BROWSER
    assert event["request_id"] == landed.headers["X-Request-ID"]
    assert abs(datetime.fromisoformat(event["time"]) - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_failed_sign_in_is_recorded_with_its_kind_and_no_subject(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    start = client.get("/login")
    client.get(f"/auth/callback?{callback_query(start.location, error='access_denied')}")
    client.get(f"/auth/callback?{callback_query(start.location, code='replayed')}")  # its state is used up
    run_queued_jobs(app)
    events = stored_events(app)
    assert [(event["kind"], event["outcome"]) for event in events] == [
        ("sign_in", "access_denied"),
        ("sign_in", "expired"),
    ]
    assert {event["issuer"] for event in events} == {ISSUER}
    assert {event["subject"] for event in events} == {None}


def test_sign_out_profile_change_and_revokes_are_recorded(
    app: Flask, make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    here, there = app.test_client(), app.test_client()
    sign_in(here, provider, "alice")
    sign_in(there, provider, "alice")
    other_handle = stored_session(app, fake_redis, session_id(app, there))["handle"]

    token = signed_in_page_token(here)
    saved = here.post(
        "/profile",
        data={
            "csrf_token": token,
            "display_name": "A secret new name",
            "locale": "en",
            "timezone": "Europe/Oslo",
            "website": "",
            "bio": "",
            "version": stored_session(app, fake_redis, session_id(app, here))["profile"]["version"],
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    token = signed_in_page_token(here, "/sessions")
    assert here.post(f"/sessions/{other_handle}/revoke", data={"csrf_token": token}).status_code == 302
    assert here.post("/logout", data={"csrf_token": signed_in_page_token(here)}).status_code == 302
    run_queued_jobs(app)

    events = stored_events(app)
    assert [(event["kind"], event["outcome"]) for event in events] == [
        ("sign_in", "success"),
        ("sign_in", "success"),
        ("profile_changed", "saved"),
        ("session_revoked", "user"),
        ("sign_out", "user"),
    ]
    change = events[2]
    assert change["detail"] == "display_name,timezone"  # which fields, never their values
    assert not any("secret" in str(value) for event in events for value in event.values())
    assert events[3]["detail"] == f"session {other_handle}"
    assert {event["subject"] for event in events} == {"alice"}


def test_an_oversized_or_hostile_user_agent_is_cut_and_cleaned(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    client.environ_base |= {"HTTP_USER_AGENT": "Evil\x00\x1b[31m" + "A" * 10_000}
    sign_in(client, provider, "alice")
    [event] = stored_events(app)
    assert event["user_agent"].startswith("Evil[31mAAA")
    assert len(event["user_agent"]) == 256


def test_a_forged_request_id_is_not_recorded(app: Flask, client: FlaskClient, provider: MockProvider) -> None:
    client.environ_base |= {"HTTP_X_REQUEST_ID": "forged\nadmin=1"}
    landed = sign_in(client, provider, "alice")
    [event] = stored_events(app)
    assert event["request_id"] == landed.headers["X-Request-ID"]
    assert "\n" not in event["request_id"]


def test_an_event_stored_twice_is_kept_once(app: Flask) -> None:
    with app.test_request_context("/"):
        event = build_event("sign_out", "user", issuer=ISSUER, subject="alice")
    with app.app_context():
        store_audit_event(event)
        store_audit_event(event)  # a retried job, or an outbox row enqueued twice
    assert len(stored_events(app)) == 1


@pytest.mark.parametrize(
    "broken",
    [{"event_id": ""}, {"event_id": "x" * 33}, {"occurred_at": "yesterday"}, {"kind": ""}, {"kind": None}],
)
def test_a_malformed_event_fails_for_good_and_stores_nothing(app: Flask, broken: dict[str, Any]) -> None:
    with app.test_request_context("/"):
        event = build_event("sign_out", "user", issuer=ISSUER, subject="alice") | broken
    with app.app_context(), pytest.raises(PermanentJobFailure):
        store_audit_event(event)
    assert stored_events(app) == []


def test_an_outcome_a_kind_cannot_have_is_a_programming_error(app: Flask) -> None:
    with app.test_request_context("/"), pytest.raises(ValueError):
        build_event("sign_out", "operator")


def test_with_the_queue_down_the_event_waits_in_the_outbox(app: Flask, redis_server: fakeredis.FakeServer) -> None:
    redis_server.connected = False
    try:
        with app.test_request_context("/"):
            record("sign_out", "user", issuer=ISSUER, subject="alice")
    finally:
        redis_server.connected = True
    with app.app_context():
        [row] = db.session.execute(select(OutboxJob)).scalars().all()
    assert row.func == "audit.jobs:store_audit_event"
    assert (row.args[0]["kind"], row.args[0]["subject"]) == ("sign_out", "alice")


def test_with_the_queue_and_the_database_down_recording_logs_and_does_not_raise(
    make_app: AppFactory, redis_server: fakeredis.FakeServer, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/dir/db.sqlite", create_tables=False)
    redis_server.connected = False
    try:
        with app.test_request_context("/"):
            record("sign_out", "user", issuer=ISSUER, subject="alice")
    finally:
        redis_server.connected = True
    [lost] = [entry for entry in caplog.records if entry.name == "audit.events"]
    assert lost.getMessage() == "audit event sign_out lost: queue and outbox both failed (OperationalError)"
    assert "alice" not in caplog.text


def test_retention_prunes_only_events_older_than_the_setting(make_app: AppFactory) -> None:
    app = make_app(AUDIT_RETENTION_DAYS=30)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with app.test_request_context("/"):
        old = build_event("sign_out", "user") | {"occurred_at": (now - timedelta(days=31)).isoformat()}
        recent = build_event("sign_out", "user") | {"occurred_at": (now - timedelta(days=29)).isoformat()}
    with app.app_context():
        store_audit_event(old)
        store_audit_event(recent)
        assert prune_audit_events(now) == 1
    assert [event["event_id"] for event in stored_events(app)] == [recent["event_id"]]


def test_retention_zero_keeps_every_event(make_app: AppFactory) -> None:
    app = make_app(AUDIT_RETENTION_DAYS=0)
    with app.test_request_context("/"):
        ancient = build_event("sign_out", "user") | {"occurred_at": "2001-01-01T00:00:00+00:00"}
    with app.app_context():
        store_audit_event(ancient)
        assert prune_audit_events() == 0
    assert len(stored_events(app)) == 1


def test_every_sign_in_queues_exactly_one_audit_event(app: Flask, client: FlaskClient, provider: MockProvider) -> None:
    sign_in(client, provider, "alice", worker=False)
    [event] = queued_audit_events(app)
    assert event["kind"] == "sign_in"


def sign_outs(app: Flask) -> list[tuple[str | None, str | None, str | None]]:
    """The queued sign_out events: (outcome, subject, session handle)."""
    return [
        (event["outcome"], event["subject"], event["session_handle"])
        for event in queued_audit_events(app)
        if event["kind"] == "sign_out"
    ]


def test_logout_user_records_its_own_sign_out_before_the_session_ends(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    app.register_blueprint(app_code)
    client = app.test_client()
    sign_in(client, provider, "alice")
    handle = stored_session(app, fake_redis, session_id(app, client))["handle"]
    signed_out = client.post("/app-signs-me-out", data={"csrf_token": signed_in_page_token(client)})
    assert signed_out.get_data(as_text=True) == "signed out"
    assert session_id(app, client) is None
    # "app", not "user": an operator can tell the app's sign-out from the user's button.
    assert sign_outs(app) == [("app", "alice", handle)]
    run_queued_jobs(app)
    assert kinds(app) == [("sign_in", "success"), ("sign_out", "app")]


def test_logout_user_of_a_visitor_who_is_not_signed_in_records_nothing(
    make_app: AppFactory, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    app.register_blueprint(app_code)
    with app.test_request_context("/"):
        app.preprocess_request()
        flask_login.logout_user()
    assert sign_outs(app) == []


def test_post_logout_records_exactly_one_sign_out(app: Flask, client: FlaskClient, provider: MockProvider) -> None:
    sign_in(client, provider, "alice")
    token = signed_in_page_token(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert [outcome for outcome, _, _ in sign_outs(app)] == ["user"]
    # Replayed after the session ended: refused or not, nothing more is signed out or recorded.
    client.post("/logout", data={"csrf_token": token})
    assert [outcome for outcome, _, _ in sign_outs(app)] == ["user"]


def test_the_app_s_sign_out_shows_in_the_user_s_activity(make_app: AppFactory, provider: MockProvider) -> None:
    app = make_app()
    app.register_blueprint(app_code)
    here, there = app.test_client(), app.test_client()
    sign_in(here, provider, "alice")
    sign_in(there, provider, "alice")
    there.post("/app-signs-me-out", data={"csrf_token": signed_in_page_token(there)})
    run_queued_jobs(app)
    page = here.get("/sessions").get_data(as_text=True)
    assert "Signed out by the application" in page


def test_an_operator_s_revoke_is_the_account_disabled_event_not_a_session_revoked_one(app: Flask) -> None:
    with app.test_request_context("/"), pytest.raises(ValueError):
        build_event("session_revoked", "operator")
