"""sessions/hooks.py: sign-in hooks run in order, then the persistence job is queued; refresh hooks derive or veto."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sessions.hooks import SessionChangeRefused, SessionHooks, session_hooks
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    queued_records,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import MockProvider


def profile_form(token: str, display_name: str) -> dict[str, str]:
    """A valid profile submission with `display_name`."""
    return {"csrf_token": token, "display_name": display_name, "locale": "en", "timezone": "UTC"}


def test_sign_in_hooks_run_in_order_and_persistence_runs_last(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    hooks = session_hooks(app)
    calls: list[str] = []

    @hooks.before_session_saved
    def add_team(data: dict[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
        calls.append("add_team")
        data["team"] = claims.get("team", "none")
        return data

    @hooks.before_session_saved
    def name_by_team(data: dict[str, Any], claims: Mapping[str, Any]) -> None:
        calls.append("name_by_team")
        # Sees what the first hook added; mutating in place and returning None keeps the change.
        data["profile"]["display_name"] = f"{data['profile']['display_name']} ({data['team']})"

    client = app.test_client()
    assert sign_in(client, provider, "alice", team="blue").status_code == 302

    assert calls == ["add_team", "name_by_team"]
    stored = stored_session(app, fake_redis, session_id(app, client))
    assert stored["team"] == "blue"
    assert stored["profile"]["display_name"] == "Alice (blue)"
    # The persistence job, queued once the session is stored, saves what the hooks produced.
    (record,) = queued_records(app)
    assert record["display_name"] == "Alice (blue)"


def test_a_sign_in_hook_may_return_new_data(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    session_hooks(app).before_session_saved(lambda data, claims: {**data, "plan": "free"})
    client = app.test_client()
    sign_in(client, provider)
    assert stored_session(app, fake_redis, session_id(app, client))["plan"] == "free"


def test_refresh_hooks_see_trigger_old_and_new_and_may_derive_fields(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()
    hooks = session_hooks(app)
    seen: list[tuple[str, str, str]] = []
    sign_in_calls: list[str] = []
    hooks.before_session_saved(lambda data, claims: sign_in_calls.append("sign-in") or data)

    @hooks.on_refresh
    def derive_initials(trigger: str, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        seen.append((trigger, old["profile"]["display_name"], new["profile"]["display_name"]))
        new["initials"] = "".join(word[0] for word in new["profile"]["display_name"].split())
        return new

    client = app.test_client()
    sign_in(client, provider)
    jobs_after_sign_in = len(queued_records(app))
    assert (
        client.post("/profile", data=profile_form(signed_in_page_token(client), "Alice Pleasance Liddell")).status_code
        == 302
    )

    assert seen == [("update", "Alice", "Alice Pleasance Liddell")]
    stored = stored_session(app, fake_redis, session_id(app, client))
    assert stored["initials"] == "APL"
    assert stored["profile"]["display_name"] == "Alice Pleasance Liddell"
    # Login-only work does not run again: the sign-in chain ran once, one profile job was added.
    assert sign_in_calls == ["sign-in"]
    assert len(queued_records(app)) == jobs_after_sign_in + 1


def test_a_refresh_hook_can_refuse_a_change(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()

    @session_hooks(app).on_refresh
    def no_admins(trigger: str, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        if "admin" in new["profile"]["display_name"].lower():
            raise SessionChangeRefused("That display name is reserved.", field="display_name")

    client = app.test_client()
    sign_in(client, provider)
    token = signed_in_page_token(client)
    sid = session_id(app, client)
    record_before = stored_session(app, fake_redis, sid)
    jobs_before = queued_records(app)

    refused = client.post("/profile", data=profile_form(token, "The Admin"))
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "That display name is reserved." in html
    assert 'data-testid="error-display_name"' in html
    assert stored_session(app, fake_redis, sid) == record_before
    assert queued_records(app) == jobs_before
    assert "Your profile has been saved." not in client.get("/profile").get_data(as_text=True)


def test_a_refusal_without_a_field_is_shown_for_the_form(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app()

    def frozen(trigger: str, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        raise SessionChangeRefused("Profiles are read-only during maintenance.")

    session_hooks(app).on_refresh(frozen)
    client = app.test_client()
    sign_in(client, provider)
    jobs_before = queued_records(app)
    refused = client.post("/profile", data=profile_form(signed_in_page_token(client), "Someone Else"))
    assert refused.status_code == 400
    assert 'data-testid="form-error"' in refused.get_data(as_text=True)
    assert "read-only during maintenance" in refused.get_data(as_text=True)
    assert queued_records(app) == jobs_before
    assert stored_session(app, fake_redis, session_id(app, client))["profile"]["display_name"] == "Alice"


def test_hooks_belong_to_their_app(make_app: AppFactory) -> None:
    first, second = make_app(), make_app()
    session_hooks(first).on_refresh(lambda trigger, old, new: new)
    assert session_hooks(first) is not session_hooks(second)
    assert len(session_hooks(first)._on_refresh) == 1
    assert session_hooks(second)._on_refresh == []


def test_unknown_triggers_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown refresh trigger"):
        SessionHooks().run_on_refresh("login", {}, {})


def test_pinned_last_hooks_run_after_later_registrations() -> None:
    hooks = SessionHooks()
    order: list[str] = []
    hooks.before_session_saved(lambda data, claims: order.append("pinned"), last=True)
    hooks.before_session_saved(lambda data, claims: order.append("first"))
    hooks.before_session_saved(lambda data, claims: order.append("second"))
    assert hooks.run_before_session_saved({}, {}) == {}
    assert order == ["first", "second", "pinned"]
