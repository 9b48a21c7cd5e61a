"""Read (and, for tests of time passing, rewrite) what Redis holds for a session, as one plain dict.

A session is spread over several keys (sessions/keys.py); tests see it composed:
its app data plus "created_at", "user" (identity), "profile" (with "version"),
"tokens", "handle" and "provider_sid".
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from redis import Redis

from sessions import keys
from sessions.long_fields import PIECE_BYTES, join_pieces, piece_fields
from sessions.record_fields import provider_sid_text, session_handle
from sessions.token_record import pack_tokens, unpack_tokens
from users.schema import decode_identity, decode_profile, encode, identity_dict, profile_dict, profile_from


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


def read_session(client: Redis, sid: str | None) -> dict[str, Any] | None:
    """The session stored under `sid`, composed; None if there is none (or the id is malformed)."""
    parsed = keys.parse_sid(sid)
    if parsed is None:
        return None
    user, member = parsed
    record = client.hgetall(keys.session_key(user, member))
    if not record:
        return None
    raw_data = join_pieces([record.get(name.encode()) for name in piece_fields("d")])
    data = msgspec.msgpack.decode(raw_data) if raw_data else {}
    composed: dict[str, Any] = {**data, "created_at": float(record[b"c"])}
    if user is None:
        return composed
    state = client.hgetall(keys.user_key(user))
    tokens = tokens_value(client, user, member)
    composed["handle"] = _text(record.get(b"h")) or session_handle(member)
    composed["provider_sid"] = provider_sid_text(record[b"ps"]) if record.get(b"ps") else None
    identity, profile = (join_pieces([state.get(name.encode()) for name in piece_fields(field)]) for field in "ip")
    if identity:
        composed["user"] = identity_dict(decode_identity(identity))
    if profile:
        composed["profile"] = profile_dict(decode_profile(profile), int(state.get(b"pv", b"0")))
    if tokens:
        composed["tokens"] = unpack_tokens(tokens).as_dict()
    return composed


def session_keys(client: Redis) -> list[bytes]:
    """Every session record in Redis (signed-in and anonymous)."""
    return sorted(
        key
        for pattern in (f"{keys.PREFIX}{{*}}:s:*", f"{keys.PREFIX}a:*")
        for key in client.scan_iter(match=pattern, count=1000)
    )


def session_ids(client: Redis) -> list[str]:
    """The session ids behind `session_keys`."""
    ids = []
    for key in session_keys(client):
        text = key.decode().removeprefix(keys.PREFIX)
        if text.startswith("a:"):
            ids.append(text[2:])
        else:
            user, _, member = text.partition("}:s:")
            ids.append(keys.signed_in_sid(user.removeprefix("{"), member))
    return ids


def rewrite_session(client: Redis, sid: str, **changes: Any) -> None:
    """Change a stored session in place, keeping its expiry, as time passing would.

    "created_at" moves the sign-in time, "tokens" changes stored tokens (given keys
    only), anything else changes the session's app data.
    """
    parsed = keys.parse_sid(sid)
    assert parsed is not None, sid
    user, member = parsed
    session_key = keys.session_key(user, member)
    if "created_at" in changes:
        # Only the sign-in moves: a session never written since it signed in has no last-seen time of its own
        # (its sign-in is it), so it keeps the one it had.
        created = client.hget(session_key, "c")
        if user is not None and created is not None and not client.hexists(session_key, "seen"):
            client.hset(session_key, "seen", int(float(created)))
        client.hset(session_key, "c", changes.pop("created_at"))
    if "tokens" in changes:
        assert user is not None
        value = tokens_value(client, user, member)
        assert value is not None, sid
        stored = unpack_tokens(value)
        merged = {**stored.as_dict(), **changes.pop("tokens")}
        store_tokens_value(client, user, member, f"{stored.generation}|".encode() + pack_tokens(merged))
    if changes:
        raw = join_pieces(client.hmget(session_key, piece_fields("d")))
        data = {**(msgspec.msgpack.decode(raw) if raw else {}), **changes}
        # Stored whole, as before 2026-12 (the store reads both); no pieces of the earlier value stay.
        client.hdel(session_key, *piece_fields("d")[1:])
        client.hset(session_key, "d", msgspec.msgpack.encode(data))
        client.hincrby(session_key, "v", 1)


def tokens_value(client: Redis, user: str, member: str) -> bytes | None:
    """A session's stored "<generation>|<msgpack>" tokens: its hash's pieces, else the tokens key beside it."""
    pieces = client.hmget(keys.session_key(user, member), piece_fields("t"))
    joined = join_pieces(pieces)
    if joined is not None:
        return joined
    beside = keys.tokens_key(user, member)
    return client.get(beside) if client.type(beside) == b"string" else None


def store_tokens_value(client: Redis, user: str, member: str, value: bytes) -> None:
    """Replace a session's stored tokens where they are, as a committed refresh does (pieces or the key beside)."""
    session_key = keys.session_key(user, member)
    if client.hexists(session_key, "t"):
        client.hdel(session_key, *piece_fields("t"))
        chunks = [value[start : start + PIECE_BYTES] for start in range(0, len(value), PIECE_BYTES)] or [b""]
        client.hset(session_key, mapping=dict(zip(piece_fields("t"), chunks, strict=False)))
    else:
        client.set(keys.tokens_key(user, member), value, keepttl=True)


def move_tokens_beside(client: Redis, sid: str) -> str:
    """Store a session's tokens as Gatehouse did before 2026-12: a string under the tokens key, with the session's
    expiry; returns that key."""
    parsed = keys.parse_sid(sid)
    assert parsed is not None and parsed[0] is not None, sid
    user, member = parsed
    value = tokens_value(client, user, member)
    assert value is not None, sid
    session_key, tokens_key = keys.session_key(user, member), keys.tokens_key(user, member)
    client.hdel(session_key, *piece_fields("t"))
    client.set(tokens_key, value, px=client.pttl(session_key))
    return tokens_key


def session_exists(client: Redis, sid: str | None) -> bool:
    """True while Redis holds a session record under `sid`."""
    parsed = keys.parse_sid(sid)
    return parsed is not None and bool(client.exists(keys.session_key(*parsed)))


def shared_profile(client: Redis, issuer: str, subject: str) -> dict[str, Any] | None:
    """The profile every session of the user shares (with its version), or None."""
    version, *pieces = client.hmget(keys.user_key(keys.user_tag(issuer, subject)), "pv", *piece_fields("p"))
    profile = join_pieces(pieces)
    if profile is None:
        return None
    return profile_dict(decode_profile(profile), int(version or 0))


def seed_profile(client: Redis, issuer: str, subject: str, profile: dict[str, Any]) -> None:
    """Store a user's shared profile (with its "version"), as the worker does after persisting them."""
    user_key = keys.user_key(keys.user_tag(issuer, subject))
    # Stored whole, as Gatehouse before 2026-12 did (the store reads both); no pieces of an earlier value stay.
    client.hdel(user_key, *piece_fields("p")[1:])
    client.hset(user_key, mapping={"p": encode(profile_from(profile)), "pv": int(profile["version"]), "ok": 1})
    client.expire(user_key, 30 * 24 * 3600)


def plant_session(
    app: Any, issuer: str, subject: str, profile: dict[str, Any], *, provider_sid: str | None = None
) -> str:
    """Start a signed-in session for a user straight through the app's store (no provider); returns its id.

    `provider_sid`: the provider session it came from, as an ID token's `sid` names it."""
    from sessions.lifecycle import start_user_session
    from users.schema import Identity

    with app.test_request_context("/"):
        stored = start_user_session(
            identity=Identity(issuer=issuer, subject=subject),
            profile=profile_from(profile),
            tokens={"access_token": "planted", "refresh_token": None, "expires_at": None, "id_token": None},
            data={},
            provider_sid=provider_sid,
            auth_time=None,
            issued_at=int(time.time()),
            provider="oidc",
        )
        # A returning user whose saved profile the worker has already confirmed.
        app.session_interface.client.hset(keys.user_key(keys.user_tag(issuer, subject)), "ok", 1)
        return stored.sid


def indexed_sessions(client: Redis, user: str) -> dict[str, float]:
    """The index of a user's sessions: the random part of each session id -> the latest moment it can be alive.

    Read from both of its forms (sessions/lua/lib/session_index.lua): the user's state fields and the older sorted set.
    """
    found = {member.decode(): score for member, score in client.zrange(keys.index_key(user), 0, -1, withscores=True)}
    for name, value in client.hgetall(keys.user_key(user)).items():
        if name.startswith(keys.INDEX_FIELD.encode()):
            found[name[len(keys.INDEX_FIELD) :].decode()] = float(value)
    return found
