"""oidc/tokens.py through the app: an expired access token is refreshed and stored through the refresh hook."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sessions.hooks import session_hooks
from sessions.store import KEY_PREFIX
from tests.unit.helpers import RecordingRedis, rewrite_session, session_id, session_keys, stored_session
from tests.unit.mock_provider import MockProvider


def expire_access_token(app: Flask, redis: RecordingRedis, client: FlaskClient) -> dict[str, Any]:
    """Make the stored access token expired; return the session as it was before."""
    sid = session_id(app, client)
    before = stored_session(app, redis, sid)
    rewrite_session(app, redis, sid, tokens={**before["tokens"], "expires_at": time.time() - 5})
    return before


@pytest.fixture
def token_changes(app: Flask) -> list[tuple[str, str, str]]:
    """(trigger, old access token, new access token) for each refresh the app's hook sees."""
    seen: list[tuple[str, str, str]] = []

    @session_hooks(app).on_refresh
    def record(trigger: str, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        seen.append((trigger, old["tokens"]["access_token"], new["tokens"]["access_token"]))
        new["tokens_refreshed"] = new.get("tokens_refreshed", 0) + 1
        return new

    return seen


def test_an_expired_access_token_is_refreshed_through_the_refresh_hook(
    app: Flask,
    signed_in: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    token_changes: list[tuple[str, str, str]],
) -> None:
    before = expire_access_token(app, fake_redis, signed_in)
    page = signed_in.get("/dashboard")
    assert page.status_code == 200

    (grant,) = provider.refresh_grants()
    assert grant["refresh_token"] == before["tokens"]["refresh_token"]
    after = stored_session(app, fake_redis, session_id(app, signed_in))
    assert after["tokens"]["access_token"] != before["tokens"]["access_token"]
    assert after["tokens"]["access_token"] in provider.access_tokens
    assert after["tokens"]["refresh_token"] in provider.refresh_tokens  # rotated
    assert after["tokens"]["expires_at"] > time.time()
    assert token_changes == [("token", before["tokens"]["access_token"], after["tokens"]["access_token"])]
    assert after["tokens_refreshed"] == 1  # what the hook derived was stored
    assert after["created_at"] == before["created_at"]
    assert after["user"] == before["user"]
    # The API (the provider's userinfo) was called with the new token only.
    assert provider.userinfo_requests[-1] == after["tokens"]["access_token"]
    assert before["tokens"]["access_token"] not in provider.userinfo_requests[1:]


def test_a_valid_access_token_is_not_refreshed(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, token_changes: list[tuple[str, str, str]]
) -> None:
    assert signed_in.get("/dashboard").status_code == 200
    assert provider.refresh_grants() == []
    assert token_changes == []


def test_a_refused_refresh_signs_the_user_out(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.refresh_error = "invalid_grant"
    expire_access_token(app, fake_redis, signed_in)
    page = signed_in.get("/dashboard")
    assert page.status_code == 302
    assert page.location == "/login?reason=expired"
    assert session_keys(fake_redis) == []


def test_an_unreachable_token_endpoint_keeps_the_user_signed_in(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.token_endpoint_down = True
    before = expire_access_token(app, fake_redis, signed_in)
    page = signed_in.get("/dashboard")
    assert page.status_code == 502
    assert 'data-testid="api-error"' in page.get_data(as_text=True)
    sid = session_id(app, signed_in)
    assert fake_redis.exists(KEY_PREFIX + sid)
    assert stored_session(app, fake_redis, sid)["tokens"]["access_token"] == before["tokens"]["access_token"]

    provider.token_endpoint_down = False  # the provider is back: the next view refreshes
    assert signed_in.get("/dashboard").status_code == 200
    assert stored_session(app, fake_redis, sid)["tokens"]["access_token"] != before["tokens"]["access_token"]


def test_a_refreshed_id_token_for_another_user_signs_out(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.id_token_overrides = {"sub": "mallory"}
    expire_access_token(app, fake_redis, signed_in)
    page = signed_in.get("/dashboard")
    assert page.status_code == 302
    assert page.location == "/login?reason=expired"
    assert session_keys(fake_redis) == []
