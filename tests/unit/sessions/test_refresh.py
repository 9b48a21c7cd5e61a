"""sessions/refresh.py through the app: an expired access token is refreshed (once, however many requests want it)
and stored through the refresh hook."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sessions import keys
from sessions import tokens as stored_tokens
from sessions.hooks import session_hooks
from sessions.token_record import pack_tokens, unpack_tokens
from tests.support.session_records import store_tokens_value, tokens_value
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    rewrite_session,
    session_exists,
    session_id,
    session_keys,
    sign_in,
    stored_session,
)
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


def expire_access_token_in(app: Flask, redis: RecordingRedis, client: FlaskClient, seconds: float) -> dict[str, Any]:
    """Make the stored access token expire `seconds` from now; return the session as it was before."""
    sid = session_id(app, client)
    before = stored_session(app, redis, sid)
    rewrite_session(app, redis, sid, tokens={**before["tokens"], "expires_at": time.time() + seconds})
    return before


@pytest.mark.parametrize(("ahead", "refreshed"), [(60, False), (120, True)])
def test_a_working_token_is_refreshed_only_within_token_refresh_ahead(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis, ahead: int, refreshed: bool
) -> None:
    """90 s left: kept under the default 60-s window, refreshed under a 120-s one (and the old token not used)."""
    app = make_app(TOKEN_REFRESH_AHEAD=ahead)
    client = app.test_client()
    assert sign_in(client, provider, "alice").status_code == 302
    before = expire_access_token_in(app, fake_redis, client, 90)
    assert client.get("/dashboard").status_code == 200
    after = stored_session(app, fake_redis, session_id(app, client))
    assert len(provider.refresh_grants()) == (1 if refreshed else 0)
    assert (after["tokens"]["access_token"] != before["tokens"]["access_token"]) is refreshed
    assert provider.userinfo_requests[-1] == after["tokens"]["access_token"]


def test_a_zero_window_still_refreshes_a_token_about_to_expire(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """TOKEN_REFRESH_AHEAD=0 never sends a token inside the expiry margin: 5 s left is refreshed first."""
    app = make_app(TOKEN_REFRESH_AHEAD=0)
    client = app.test_client()
    assert sign_in(client, provider, "alice").status_code == 302
    before = expire_access_token_in(app, fake_redis, client, 5)
    assert client.get("/dashboard").status_code == 200
    (grant,) = provider.refresh_grants()
    assert grant["refresh_token"] == before["tokens"]["refresh_token"]
    assert before["tokens"]["access_token"] not in provider.userinfo_requests[1:]


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
    assert session_exists(fake_redis, sid)
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


def lease_and_tokens_keys(app: Flask, client: FlaskClient) -> tuple[str, str]:
    """The refresh lease key and tokens key of the browser's session."""
    user, member = keys.parse_sid(session_id(app, client))
    return keys.lease_key(user, member), keys.tokens_key(user, member)


def test_while_another_request_refreshes_this_one_waits_for_its_tokens(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    expire_access_token(app, fake_redis, signed_in)
    lease, _ = lease_and_tokens_keys(app, signed_in)
    user, member = keys.parse_sid(session_id(app, signed_in))
    fake_redis.set(lease, "another-request", px=5000)
    fresh = provider.issue("alice", None)
    generation = unpack_tokens(tokens_value(fake_redis, user, member)).generation

    def other_request_commits() -> None:
        packed = pack_tokens({**fresh, "expires_at": time.time() + 3600})
        store_tokens_value(fake_redis, user, member, f"{generation + 1}|".encode() + packed)
        fake_redis.delete(lease)

    timer = threading.Timer(0.2, other_request_commits)
    timer.start()
    try:
        page = signed_in.get("/dashboard")
    finally:
        timer.join()
    assert page.status_code == 200
    assert provider.refresh_grants() == []  # the refresh token was redeemed once, by the other request
    assert provider.userinfo_requests[-1] == fresh["access_token"]


def test_within_the_refresh_ahead_window_a_request_never_waits_for_another_s_refresh(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """While another request holds the lease on a token that still works, this one goes on with the old
    token at once: no wait, no second redeem. Only once the token counts as expired do requests wait."""
    app = make_app(TOKEN_REFRESH_AHEAD=120)
    client = app.test_client()
    assert sign_in(client, provider, "alice").status_code == 302
    before = expire_access_token_in(app, fake_redis, client, 90)
    lease, _ = lease_and_tokens_keys(app, client)
    fake_redis.set(lease, "another-request", px=60_000)
    started = time.monotonic()
    assert client.get("/dashboard").status_code == 200
    # Not a speed check: a request that waits does so until its bounded wait ends (lease_seconds() + 1 = 13 s).
    assert time.monotonic() - started < 5
    assert provider.refresh_grants() == []
    assert provider.userinfo_requests[-1] == before["tokens"]["access_token"]


def test_a_refresh_that_never_finishes_elsewhere_is_not_redeemed_again(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """While another request holds the lease, this one never redeems: past its bounded wait it reports an error."""
    app = make_app(OIDC_TIMEOUT=0.2)  # a short lease, so the bounded wait is short too
    client = app.test_client()
    sign_in(client, provider)
    before = expire_access_token(app, fake_redis, client)
    lease, _ = lease_and_tokens_keys(app, client)
    fake_redis.set(lease, "a-request-still-redeeming", px=60_000)
    page = client.get("/dashboard")
    assert page.status_code == 502  # an error, but no second redeem and no sign-out
    assert provider.refresh_grants() == []
    sid = session_id(app, client)
    assert session_exists(fake_redis, sid)
    assert stored_session(app, fake_redis, sid)["tokens"]["access_token"] == before["tokens"]["access_token"]
    # With the lease gone, the next page refreshes by itself.
    fake_redis.delete(lease)
    assert client.get("/dashboard").status_code == 200
    assert len(provider.refresh_grants()) == 1


def test_a_lease_that_lapses_while_waiting_is_taken_over(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """A holder that died (its lease expired, no new tokens): the waiting request redeems once itself."""
    expire_access_token(app, fake_redis, signed_in)
    lease, _ = lease_and_tokens_keys(app, signed_in)
    fake_redis.set(lease, "a-request-that-died", px=300)
    assert signed_in.get("/dashboard").status_code == 200
    assert len(provider.refresh_grants()) == 1


def test_a_refresh_outlasting_its_lease_keeps_it_and_no_one_redeems_twice(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Third pass, item 6: a "token" hook slower than the lease (OIDC_TIMEOUT=0.2: 2.4 s) does not let a second
    request take the lapsed lease and redeem the same refresh token again; the holder renews it."""
    app = make_app(OIDC_TIMEOUT=0.2)
    slow_once = threading.Event()

    @session_hooks(app).on_refresh
    def slow_hook(trigger: str, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if trigger == "token" and not slow_once.is_set():
            slow_once.set()
            time.sleep(2.8)
        return new

    first = app.test_client()
    sign_in(first, provider)
    expire_access_token(app, fake_redis, first)
    second = app.test_client()
    cookie = app.config["SESSION_COOKIE_NAME"]
    second.set_cookie(cookie, session_id(app, first) or "")
    answers: dict[str, int] = {}

    def load(name: str, client: FlaskClient) -> None:
        answers[name] = client.get("/dashboard").status_code

    holder = threading.Thread(target=load, args=("first", first))
    holder.start()
    assert slow_once.wait(timeout=10), "the first request reached its refresh hook"
    load("second", second)  # waits for the holder's tokens instead of taking a lapsed lease
    holder.join(timeout=30)

    assert answers == {"first": 200, "second": 200}
    assert len(provider.refresh_grants()) == 1, "the refresh token was redeemed once"
    lease, _ = lease_and_tokens_keys(app, first)
    assert fake_redis.get(lease) is None  # given up by its holder


def test_the_lease_is_given_up_only_by_its_owner(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """A holder whose lease lapsed and was taken by another request leaves that request's lease alone."""
    lease, _ = lease_and_tokens_keys(app, signed_in)
    with app.test_request_context(
        headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={session_id(app, signed_in)}"}
    ):
        app.preprocess_request()
        with stored_tokens.held_lease("the-first-holder", 5):
            fake_redis.set(lease, "another-request", px=5000)  # ours lapsed; another took it
    assert fake_redis.get(lease) == b"another-request"
