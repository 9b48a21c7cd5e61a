"""sessions/provider_sessions.py and provider_session.lua: a provider session's users and its logouts.

The session script and the naming of its user in the provider session's lookup are two calls
(on a Redis Cluster, two slots), so a back-channel logout can fall between them; these tests put
it there, before them and after them, and the session ends every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from flask import Flask

from sessions import keys
from sessions.lifecycle import ProviderSessionEnded, start_user_session
from sessions.provider_sessions import provider_session_logged_out
from sessions.scripts import ScriptCall
from sessions.store import session_store
from tests.unit.helpers import RecordingRedis
from users.schema import Identity, profile_from

ISSUER = "https://provider.test"
SID = "provider-session-1"
ALICE = keys.user_tag(ISSUER, "alice")


def start_alice(app: Flask, issued_at: int) -> str:
    """alice signs in from provider session SID with an ID token issued at `issued_at`; her session's id."""
    with app.test_request_context("/"):
        stored = start_user_session(
            identity=Identity(issuer=ISSUER, subject="alice"),
            profile=profile_from({"display_name": "Alice", "locale": "en", "timezone": "UTC"}),
            tokens={"access_token": "a", "refresh_token": None, "expires_at": None, "id_token": None},
            data={},
            provider_sid=SID,
            auth_time=None,
            issued_at=issued_at,
            provider="oidc",
        )
        assert stored.sid is not None
        return stored.sid


def log_out_provider_session(app: Flask, issued_at: int, user: str = "") -> list[str]:
    with app.test_request_context("/"):
        return provider_session_logged_out(ISSUER, SID, issued_at, 60, user)


def alice_sessions(redis: RecordingRedis) -> list[bytes]:
    return list(redis.scan_iter(f"gh:{{{ALICE}}}:s:*"))


def between_the_calls(app: Flask, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]) -> None:
    """Run `meanwhile` after the first call of a sign-in's replicated_all (several calls), before the next one."""
    scripts = session_store(app).scripts

    def interleaved(calls: Sequence[ScriptCall]) -> tuple[Any, ...]:
        results = []
        for position, call in enumerate(calls):
            results.append(call.script(keys=call.keys, args=call.args))
            if position == 0 and len(calls) > 1:
                meanwhile()
        return tuple(results)

    monkeypatch.setattr(scripts, "replicated_all", interleaved)


@pytest.mark.parametrize("named", ["every user", "alice"])
def test_a_logout_before_the_sign_in_stores_anything_ends_it(
    app: Flask, fake_redis: RecordingRedis, named: str
) -> None:
    now = int(time.time())
    log_out_provider_session(app, now, "" if named == "every user" else ALICE)
    with pytest.raises(ProviderSessionEnded):
        start_alice(app, issued_at=now)
    assert alice_sessions(fake_redis) == []


def test_a_logout_between_the_session_and_the_naming_of_its_user_ends_it(
    app: Flask, fake_redis: RecordingRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    found: list[list[str]] = []
    between_the_calls(app, monkeypatch, lambda: found.append(log_out_provider_session(app, now)))
    with pytest.raises(ProviderSessionEnded):
        start_alice(app, issued_at=now)
    assert found == [[]]  # the logout knew no user yet: the naming saw the logout instead
    assert alice_sessions(fake_redis) == []


def test_a_logout_after_the_naming_finds_the_user(app: Flask, fake_redis: RecordingRedis) -> None:
    now = int(time.time())
    start_alice(app, issued_at=now)
    assert log_out_provider_session(app, now) == [ALICE]
    assert len(alice_sessions(fake_redis)) == 1  # the caller (signin/backchannel.py) ends it by `sid`


def test_an_id_token_issued_after_the_logout_signs_in(app: Flask, fake_redis: RecordingRedis) -> None:
    """The provider reused the `sid` for a new session: its later ID token is not caught by the old logout."""
    now = int(time.time())
    log_out_provider_session(app, now - 1)
    start_alice(app, issued_at=now)
    assert len(alice_sessions(fake_redis)) == 1


def test_another_users_logout_of_a_reused_sid_does_not_end_this_sign_in(app: Flask, fake_redis: RecordingRedis) -> None:
    now = int(time.time())
    assert log_out_provider_session(app, now, keys.user_tag(ISSUER, "bob")) == [keys.user_tag(ISSUER, "bob")]
    start_alice(app, issued_at=now)
    assert len(alice_sessions(fake_redis)) == 1


def test_a_lookup_written_by_the_previous_version_is_converted_with_its_expiry(
    app: Flask, fake_redis: RecordingRedis
) -> None:
    """Before, the lookup was a string naming one user; a logout still finds that user, and keeps the expiry."""
    lookup = keys.provider_session_key(ISSUER, SID)
    fake_redis.set(lookup, ALICE, ex=5000)
    assert log_out_provider_session(app, int(time.time())) == [ALICE]
    assert fake_redis.type(lookup) == b"hash"
    assert 4990 < fake_redis.ttl(lookup) <= 5000
