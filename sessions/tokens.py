"""A session's tokens, stored with it and read only by requests that need them.

They are in pieces in the session's own hash (fields "t", "t2", ...; sessions/long_fields.py), which
the page script never reads; tokens too long for pieces, and tokens stored before 2026-12, are in the
tokens key beside the session (sessions/keys.py).

Refreshes are single-flight across processes: a request that wants to redeem the
refresh token must first take the session's lease (SET NX with an expiry longer
than the whole provider call may take), and its result is stored fenced by the
tokens' generation, so at most one redeem per rotation is ever committed.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple, cast

from flask import current_app
from redis.exceptions import RedisError, ResponseError

from connections import session_redis
from oidc.provider import UnknownProvider
from sessions import keys
from sessions.long_fields import join_pieces, piece_fields
from sessions.provider import session_provider
from sessions.store import StoredSession, session_store
from sessions.token_record import StoredTokens, pack_tokens, unpack_tokens
from sessions.user import current_session

log = logging.getLogger(__name__)

# The session's hash field (in pieces: sessions/long_fields.py) that holds its tokens.
TOKENS_FIELD = "t"


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


class TokensLocation(NamedTuple):
    """Where one session's tokens live: in pieces in its own hash (or, too long for pieces or stored before
    2026-12, the tokens key beside it), and the key of its refresh lease."""

    session: str
    tokens: str
    lease: str


def tokens_location(stored: StoredSession | None = None) -> TokensLocation | None:
    """The keys of the current signed-in session's tokens, or None."""
    stored = stored or current_session()
    if stored.user is None or stored.member is None or not stored.signed_in:
        return None
    return TokensLocation(
        keys.session_key(stored.user, stored.member),
        keys.tokens_key(stored.user, stored.member),
        keys.lease_key(stored.user, stored.member),
    )


def read_tokens() -> StoredTokens | None:
    """The current session's tokens (one Redis round trip), or None when there are none."""
    location = tokens_location()
    if location is None:
        return None
    # Both places in one round trip (one slot: the keys share the user's hash tag).
    with session_redis().pipeline(transaction=False) as pipe:
        pipe.hmget(location.session, piece_fields(TOKENS_FIELD))
        pipe.get(location.tokens)
        pieces, beside = pipe.execute(raise_on_error=False)
    packed = join_pieces(pieces)
    if packed is not None:
        return unpack_tokens(packed)
    if isinstance(beside, ResponseError):
        if not str(beside).startswith("WRONGTYPE"):
            raise beside
        return _read_hash_tokens(location.tokens)
    if isinstance(beside, Exception):
        raise beside
    return unpack_tokens(beside) if beside is not None else None


def _read_hash_tokens(key: str) -> StoredTokens | None:
    """Tokens stored as a hash by Gatehouse before 2026-12 (sessions that began before an upgrade)."""
    # redis-py types replies as bytes | str; this client does not decode responses, so they are bytes.
    reply = cast(list[bytes | None], session_redis().hmget(key, "a", "r", "e", "id", "g"))
    access, refresh, expires_at, id_token, generation = reply
    if generation is None:
        return None
    return StoredTokens(
        access_token=_text(access),
        refresh_token=_text(refresh),
        expires_at=float(expires_at) if expires_at else None,
        id_token=_text(id_token),
        generation=int(generation),
    )


def take_lease(seconds: float) -> str | None:
    """Become the one request refreshing this session's tokens; returns the lease owner id, or None."""
    location = tokens_location()
    if location is None:
        return None
    owner = secrets.token_urlsafe(12)
    taken = session_redis().set(location.lease, owner, nx=True, px=max(1, int(seconds * 1000)))
    return owner if taken else None


def lease_held() -> bool:
    """True while some request holds this session's refresh lease."""
    location = tokens_location()
    return location is not None and bool(session_redis().exists(location.lease))


@contextmanager
def held_lease(owner: str, seconds: float) -> Iterator[None]:
    """Keep this session's lease ours while the block runs (renewed every third of `seconds`), then give it up.

    The block (a redeem at the provider, the refreshed ID token's check with its key fetch, the "token"
    hooks) may outlast any fixed lease; a lapsed lease would let a second request redeem the same refresh
    token, which a provider with reuse detection answers by revoking the whole grant. A process that dies
    stops renewing, and the lease lapses `seconds` later. Renewing and releasing touch the lease only
    while it is still `owner`'s.
    """
    location = tokens_location()
    if location is None:
        yield
        return
    script, lease = session_store(current_app).scripts.lease, location.lease
    milliseconds = max(1, int(seconds * 1000))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                if script(keys=[lease], args=[owner, "renew", milliseconds]) != 1:
                    return  # lapsed already (Redis was away): nothing of ours left to keep
            except RedisError:
                log.warning("could not renew a refresh lease; it lapses by itself")
                return

    keeper = threading.Thread(target=renew, name="refresh-lease", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
        try:
            script(keys=[lease], args=[owner, "release", 0])
        except RedisError:
            log.warning("could not release a refresh lease; it lapses by itself")


def commit_tokens(generation: int, owner: str, tokens: Mapping[str, str | float | None]) -> int:
    """Store refreshed tokens if nobody else did since `generation`: 1 stored, 0 lost the race, -1 session gone."""
    location = tokens_location()
    if location is None:
        return -1
    store = session_store(current_app)
    packed = pack_tokens(tokens, keep_id_token=keeps_id_token())
    return int(store.scripts.tokens_commit(keys=list(location), args=[generation, owner, packed]))


def keeps_id_token() -> bool:
    """True when sign-out names this session to its provider by its ID token (so it is stored)."""
    try:
        return session_provider().keeps_id_token
    except UnknownProvider:
        return False
