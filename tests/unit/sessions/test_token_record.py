"""sessions/token_record.py: tokens stored as one small string, exactly as they came, and sessions
whose tokens were stored as a hash before the change keep working."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sessions import keys
from sessions.token_record import pack_tokens, unpack_tokens
from tests.support.session_records import move_tokens_beside
from tests.unit.helpers import RecordingRedis, rewrite_session, session_id, stored_session
from tests.unit.mock_provider import MockProvider


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def realistic_id_token() -> str:
    """A signed JWT of about 800 characters (RS256: a 256-byte signature)."""
    header = b64url(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
    claims = {
        "iss": "https://id.example.test/realms/staff",
        "sub": "248289761001",
        "aud": "gatehouse",
        "exp": 1_790_000_000,
        "iat": 1_789_996_400,
        "auth_time": 1_789_996_390,
        "nonce": secrets.token_urlsafe(32),
        "sid": secrets.token_urlsafe(16),
        "email": "alice@example.test",
        "name": "Alice Example",
        "at_hash": secrets.token_urlsafe(16),
    }
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(secrets.token_bytes(256))}"


def stored(tokens: dict[str, object], generation: int = 1) -> bytes:
    """The value Lua stores: the generation, a bar, the packed tokens."""
    return f"{generation}|".encode() + pack_tokens(tokens)


@pytest.mark.parametrize(
    "token",
    [
        # Random values under fixed ids: every pytest-xdist worker collects the same test names.
        pytest.param(realistic_id_token(), id="a signed JWT"),
        pytest.param(secrets.token_urlsafe(32), id="an opaque access or refresh token"),
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv_part.cipher_text.tag_part",  # JWE: an empty part
        "a+b/c==",  # standard base64 with padding is not base64url: kept as text
        "AB",  # decodes, but its unused bits are set: encoding again would give "AA"
        "A",  # no base64 at all
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",  # a vendor's prefixed token
        "token with spaces and ünïcode",
    ],
)
def test_every_token_comes_back_exactly_as_it_was_stored(token: str) -> None:
    tokens = {"access_token": token, "refresh_token": token, "expires_at": 1_789_999_999.5, "id_token": token}
    back = unpack_tokens(stored(tokens, generation=7))
    assert back.as_dict() == tokens
    assert back.generation == 7


def test_absent_tokens_stay_absent() -> None:
    back = unpack_tokens(stored({"access_token": "a", "refresh_token": None, "expires_at": None, "id_token": ""}))
    assert back.as_dict() == {"access_token": "a", "refresh_token": None, "expires_at": None, "id_token": None}


def test_tokens_are_stored_in_about_three_quarters_of_their_length() -> None:
    id_token, access, refresh = realistic_id_token(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    packed = pack_tokens({"access_token": access, "refresh_token": refresh, "expires_at": 1.0, "id_token": id_token})
    assert len(packed) <= 0.8 * len(id_token + access + refresh)


@pytest.mark.parametrize("value", [b"", b"no generation", b"1|not msgpack", b"x|" + pack_tokens({})])
def test_a_malformed_stored_value_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        unpack_tokens(value)


def test_a_session_whose_tokens_are_a_string_beside_it_from_before_the_upgrade_reads_and_refreshes(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    user, member = keys.parse_sid(sid)
    before = stored_session(app, fake_redis, sid)["tokens"]
    tokens_key = move_tokens_beside(fake_redis, sid)
    assert stored_session(app, fake_redis, sid)["tokens"] == before
    rewrite_session(app, fake_redis, sid, tokens={"expires_at": time.time() - 5})

    assert signed_in.get("/dashboard").status_code == 200  # read beside the session; expired, so refreshed once

    assert len(provider.refresh_grants()) == 1
    assert not fake_redis.exists(tokens_key)
    assert fake_redis.hexists(keys.session_key(user, member), "t")
    assert stored_session(app, fake_redis, sid)["tokens"]["access_token"] != before["access_token"]


def as_hash_from_before(redis: RecordingRedis, key: str) -> dict[str, object]:
    """Store a session's tokens the way Gatehouse did before they became one string (same TTL)."""
    old = unpack_tokens(redis.get(key))
    ttl = redis.ttl(key)
    redis.delete(key)
    redis.hset(key, mapping={"a": old.access_token or "", "r": old.refresh_token or "", "e": time.time() - 5})
    redis.hset(key, mapping={"id": old.id_token or "", "g": old.generation})
    redis.expire(key, ttl)
    return old.as_dict()


def test_a_session_whose_tokens_are_a_hash_from_before_the_upgrade_still_refreshes(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    user, member = keys.parse_sid(session_id(app, signed_in))
    tokens_key = move_tokens_beside(fake_redis, session_id(app, signed_in))
    before = as_hash_from_before(fake_redis, tokens_key)

    assert signed_in.get("/dashboard").status_code == 200  # read from the hash; expired, so refreshed once

    assert len(provider.refresh_grants()) == 1
    assert not fake_redis.exists(tokens_key)  # the refresh stored the current form: pieces in the session
    assert fake_redis.hexists(keys.session_key(user, member), "t")
    now = stored_session(app, fake_redis, session_id(app, signed_in))["tokens"]
    assert now["access_token"] != before["access_token"]
    assert now["id_token"]
