"""Where a session's tokens are stored: in pieces in its own hash (no key of their own), or beside it when too long.

The page script never reads the pieces; a refresh commits into them, fenced by the generation, and never
brings an ended session back. Tokens stored beside the session by the previous version are covered in
tests/unit/sessions/test_token_record.py.
"""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from sessions import keys
from sessions.long_fields import PIECE_BYTES, piece_fields
from sessions.scripts import LUA_DIR
from sessions.store import session_store
from sessions.token_record import pack_tokens, unpack_tokens
from tests.support.session_records import tokens_value
from tests.unit.helpers import RecordingRedis, rewrite_session, session_id, sign_in, stored_session
from tests.unit.mock_provider import MockProvider


def where(app: Flask, client: FlaskClient) -> tuple[str, str, str, str]:
    """(user, member, session key, tokens key) of the browser's session."""
    parsed = keys.parse_sid(session_id(app, client))
    assert parsed is not None and parsed[0] is not None
    user, member = parsed
    return user, member, keys.session_key(user, member), keys.tokens_key(user, member)


def commit(app: Flask, client: FlaskClient, generation: int, tokens: dict[str, object]) -> int:
    """tokens_commit.lua as sessions/tokens.py `commit_tokens` calls it."""
    user, member, session_key, tokens_key = where(app, client)
    return int(
        session_store(app).scripts.tokens_commit(
            keys=[session_key, tokens_key, keys.lease_key(user, member)],
            args=[generation, "owner", pack_tokens(tokens)],
        )
    )


def test_a_sign_ins_tokens_are_pieces_of_its_session_hash(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    _, _, session_key, tokens_key = where(app, signed_in)
    record = fake_redis.hgetall(session_key)
    assert not fake_redis.exists(tokens_key)
    assert b"t2" in record  # the ID token makes them longer than one piece
    assert max(len(value) for value in record.values()) <= PIECE_BYTES
    assert stored_session(app, fake_redis, session_id(app, signed_in))["tokens"]["id_token"]


def test_the_page_script_does_not_read_the_tokens() -> None:
    read = (LUA_DIR / "read.lua").read_text()
    assert "'t'" not in read and "'t2'" not in read


def test_a_refresh_commits_into_the_pieces_fenced_by_the_generation(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    user, member, session_key, tokens_key = where(app, signed_in)
    generation = unpack_tokens(tokens_value(fake_redis, user, member)).generation
    fresh = {"access_token": "fresh-access", "refresh_token": "fresh-refresh", "expires_at": time.time() + 60}

    assert commit(app, signed_in, generation, fresh) == 1
    assert commit(app, signed_in, generation, {"access_token": "late"}) == 0  # another refresh won
    stored = unpack_tokens(tokens_value(fake_redis, user, member))
    assert (stored.access_token, stored.generation) == ("fresh-access", generation + 1)
    assert not fake_redis.hexists(session_key, "t2")  # shorter now: no stale piece left
    assert not fake_redis.exists(tokens_key)


def test_tokens_too_long_for_pieces_live_beside_the_session_and_expire_with_it(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    user, member, session_key, tokens_key = where(app, signed_in)
    generation = unpack_tokens(tokens_value(fake_redis, user, member)).generation
    jwt_access_token = "a" * 1500  # no base64url parts to shrink: stored as it came, over 16 pieces

    assert commit(app, signed_in, generation, {"access_token": jwt_access_token}) == 1
    assert not fake_redis.hexists(session_key, "t")
    assert fake_redis.type(tokens_key) == b"string" and 0 < fake_redis.ttl(tokens_key) <= fake_redis.ttl(session_key)
    assert stored_session(app, fake_redis, session_id(app, signed_in))["tokens"]["access_token"] == jwt_access_token

    assert commit(app, signed_in, generation + 1, {"access_token": "short again"}) == 1  # back into pieces
    assert not fake_redis.exists(tokens_key) and fake_redis.hexists(session_key, "t")


def test_a_sign_in_with_tokens_too_long_for_pieces_stores_them_beside(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.id_token_overrides = {"padding": "p" * 1500}
    assert sign_in(client, provider, "alice").status_code == 302
    _, _, session_key, tokens_key = where(app, client)
    assert not set(fake_redis.hkeys(session_key)) & {name.encode() for name in piece_fields("t")}
    assert fake_redis.type(tokens_key) == b"string" and fake_redis.ttl(tokens_key) > 0
    assert stored_session(app, fake_redis, session_id(app, client))["tokens"]["id_token"]


def test_a_commit_for_an_ended_session_stores_nothing(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    _, _, session_key, tokens_key = where(app, signed_in)
    fake_redis.delete(session_key)
    assert commit(app, signed_in, 1, {"access_token": "x"}) == -1
    assert not fake_redis.exists(session_key) and not fake_redis.exists(tokens_key)  # never revived


def test_a_forged_tokens_field_without_a_generation_is_no_tokens_to_commit_over(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    _, _, session_key, _ = where(app, signed_in)
    fake_redis.hdel(session_key, *piece_fields("t"))
    fake_redis.hset(session_key, "t", b"not a token record")
    assert commit(app, signed_in, 1, {"access_token": "x"}) == -1
    assert fake_redis.hget(session_key, "t") == b"not a token record"


def test_a_session_still_works_after_its_tokens_are_rewritten(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    rewrite_session(app, fake_redis, sid, tokens={"expires_at": time.time() + 5})
    assert signed_in.get("/").status_code == 200
