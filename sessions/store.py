"""Server-side sessions in Redis, through Flask-Session's Redis interface.

This module is the one adapter between Gatehouse and Flask-Session: it subclasses
`RedisSessionInterface` and its session class and uses nothing private of theirs
(tests/unit/sessions/test_flask_session_contract.py pins what it relies on).

What it does beyond Flask-Session, and why:
- One round trip per page: one Lua script reads the session, its user's shared
  state (profile, identity, disabled, "not valid before"), checks validity, slides
  the idle expiry and, at most once a minute, records last-seen time and address.
- A signed-in session is valid only while its record exists, its user is enabled,
  it started after the user's "not valid before" time and within the absolute
  timeout; an invalid one is deleted on sight.
- No lost updates: changed app data is written with a compare-and-set on the
  record's version; if another request wrote in between, the two sets of changes
  are merged key by key (`merge_session`) and the write retried.
- No resurrection: if the record this request read has gone (sign-out,
  revocation, expiry), the write is dropped.
- Redis down: the request gets a session marked `unavailable` (a 503 page via
  `reject_when_store_unavailable`) instead of a traceback.
- msgpack only, never Flask-Session's pickle fallback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from flask import Flask, Request, Response, abort, current_app, request, session
from flask_session.base import ServerSideSessionInterface
from flask_session.redis import RedisSession, RedisSessionInterface
from redis import Redis
from redis.exceptions import RedisError

import metrics
from connections import REDIS_UNAVAILABLE
from sessions import keys
from sessions.record_fields import session_handle
from sessions.scripts import SessionScripts
from users.schema import Identity, Profile, decode_identity, decode_profile
from web import vary_on_cookie

log = logging.getLogger(__name__)

# Concurrent writers on one session each win a round; this many rounds is far beyond
# what a browser's parallel requests produce.
MAX_WRITE_ATTEMPTS = 50

# Endpoints that must answer while Redis is down (health checks, metrics, static files).
SESSIONLESS_ENDPOINTS = {"health.healthz", "health.readyz", "metrics.scrape", "static"}

_WRITTEN, _CONFLICT, _GONE = 1, 0, -1
_MISSING = object()
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class SessionWriteConflict(RedisError):
    """A session could not be written after MAX_WRITE_ATTEMPTS merges (answered as 503)."""


class StoredSession(RedisSession):
    """Flask's `session`: the app data of one session, plus what the store read beside it."""

    unavailable = False
    destroyed = False
    # Set when this request created the record under a new id, so the cookie must be sent.
    issued = False
    # The user's hash tag (None: anonymous) and the random part of the id.
    user: str | None = None
    member: str | None = None
    # The record as read: its app data (the merge base) and version (None: not stored yet).
    loaded: dict[str, Any] | None = None
    version: str | None = None
    created_at: float | None = None
    handle: str | None = None
    auth_time: int | None = None
    identity: Identity | None = None
    profile: Profile | None = None
    profile_version: int = 0
    confirmed: bool = False
    # Set at sign-in: the version of the identity claims just stored.
    identity_version: int = 0
    # The provider the session signed in with (None: stored before sessions kept it; see sessions/provider.py).
    provider_name: str | None = None

    @property
    def signed_in(self) -> bool:
        """True for the session of a signed-in user."""
        return self.identity is not None and not self.destroyed


def decode_data(raw: bytes | None) -> dict[str, Any]:
    """A session's app data (msgpack only; anything else counts as empty)."""
    if not raw:
        return {}
    try:
        data = _decoder.decode(raw)
    except msgspec.DecodeError:
        log.warning("ignoring session data that is not msgpack")
        return {}
    return data if isinstance(data, dict) else {}


def encode_data(data: Mapping[str, Any]) -> bytes:
    """The stored form of a session's app data."""
    return _encoder.encode(dict(data))


def merge_session(base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Three-way merge of session contents, key by key.

    `base` is what this request read, `mine` what it wants to store, `theirs` what
    another request stored meanwhile. Keys this request did not touch keep their
    value. Keys it set win, except that of two versioned values (dicts with an int
    "version") the newer one wins. A key it removed is removed only if the other
    request left it unchanged.
    """
    merged = dict(theirs)
    for key in base.keys() | mine.keys():
        before, wanted, current = base.get(key, _MISSING), mine.get(key, _MISSING), theirs.get(key, _MISSING)
        if wanted is not _MISSING and wanted != before:
            both_changed = current is not _MISSING and current != before and current != wanted
            merged[key] = _newer(wanted, current) if both_changed else wanted
        elif wanted is _MISSING and before is not _MISSING and current == before:
            del merged[key]
    return merged


def _newer(mine: Any, theirs: Any) -> Any:
    """Of two conflicting values, the one with the higher "version" if both carry one, else mine."""
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        mine_version, their_version = mine.get("version"), theirs.get("version")
        if isinstance(mine_version, int) and isinstance(their_version, int) and their_version > mine_version:
            return theirs
    return mine


class RedisSessionStore(RedisSessionInterface):
    """Redis-backed server-side sessions: the cookie holds only a random id."""

    session_class = StoredSession

    def __init__(self, app: Flask, client: Redis, settings: Mapping[str, Any]):
        options: dict[str, Any] = {
            "key_prefix": keys.PREFIX,
            "use_signer": False,
            "permanent": False,
            "sid_length": keys.RANDOM_BYTES,
            "serialization_format": "msgpack",
        }
        if isinstance(client, Redis):
            super().__init__(app, client=client, **options)
        else:
            # A Redis Cluster client: Flask-Session's own __init__ takes a redis.Redis only (its Cluster support
            # is an open pull request, pallets-eco/flask-session#263) and would put a localhost client in its
            # place; every command this store sends is keyed to one slot, so the cluster client serves them.
            ServerSideSessionInterface.__init__(self, app, **options)
            self.client = client
        self.idle_timeout: int = settings["SESSION_IDLE_TIMEOUT"]
        self.absolute_timeout: int = settings["SESSION_ABSOLUTE_TIMEOUT"]
        self.anonymous_ttl: int = settings["ANONYMOUS_SESSION_TTL"]
        self.seen_interval: int = settings["SESSION_LAST_SEEN_INTERVAL"]
        self.scripts = SessionScripts(
            client,
            wait_replicas=settings["REDIS_WAIT_REPLICAS"],
            wait_timeout_ms=settings["REDIS_WAIT_TIMEOUT_MS"],
            compact=settings.get("SESSION_LAYOUT", "compact") == "compact",
        )

    # Reading

    def open_session(self, app: Flask, request: Request) -> StoredSession:
        try:
            return self._open(app, request)
        except REDIS_UNAVAILABLE:
            metrics.session_store_error("read")
            app.logger.warning("session store unreachable; answering 503")
            stand_in = self.new_session()
            stand_in.unavailable = True
            return stand_in

    def new_session(self) -> StoredSession:
        """An empty anonymous session under a fresh id (stored only once it holds something)."""
        stored = self.session_class(sid=keys.new_random(), permanent=False)
        stored.member = stored.sid
        return stored

    def _open(self, app: Flask, request: Request) -> StoredSession:
        parsed = keys.parse_sid(request.cookies.get(self.get_cookie_name(app)))
        if parsed is None:
            return self.new_session()
        user, member = parsed
        if user is None:
            record = self.scripts.read(
                keys=[keys.session_key(None, member)],
                args=[time.time(), self.anonymous_ttl, self.absolute_timeout, self.seen_interval, "", member],
            )
        else:
            record = self.scripts.read(
                keys=keys.signed_in_keys(user, member),
                args=[
                    time.time(),
                    self.idle_timeout,
                    self.absolute_timeout,
                    self.seen_interval,
                    request.remote_addr or "",
                    member,
                ],
            )
        if not record:
            return self.new_session()
        data = decode_data(record[0])
        stored = self.session_class(data, sid=keys.signed_in_sid(user, member) if user else member)
        stored.user, stored.member = user, member
        stored.loaded, stored.version, stored.created_at = data, record[1].decode(), float(record[2])
        if user is not None:
            stored.handle = record[3].decode() if record[3] else session_handle(member)
            stored.auth_time = int(float(record[4])) if record[4] else None
            stored.identity = decode_identity(record[5])
            stored.profile = decode_profile(record[6])
            stored.profile_version = int(record[7] or 0)
            stored.confirmed = record[8] == b"1"
            stored.provider_name = record[9].decode() if len(record) > 9 and record[9] else None
        return stored

    # Writing

    # Flask hands back the session `open_session` made, always a StoredSession (the base takes any).
    def save_session(self, app: Flask, session: StoredSession, response: Response) -> None:  # type: ignore[override]
        if session.unavailable:
            return
        if session.destroyed:
            self._delete_cookie(app, response)
            return
        if session.accessed:
            vary_on_cookie(response)
        if session.modified:
            try:
                self._store(session, response, app)
            except RedisError:
                metrics.session_store_error("write")
                raise
        if session.issued and session.version is not None:
            self._set_cookie(app, session, response)

    def _store(self, session: StoredSession, response: Response, app: Flask) -> None:
        if session.version is None:
            if not session:
                # Nothing stored and nothing to store: just drop a stale cookie, if any.
                if request.cookies.get(self.get_cookie_name(app)):
                    self._delete_cookie(app, response)
                return
            created = time.time()
            payload = encode_data(session)
            self.scripts.create(
                keys=[keys.session_key(None, session.member or session.sid)],
                args=[payload, created, self.anonymous_ttl],
            )
            session.version, session.created_at, session.loaded, session.issued = "1", created, dict(session), True
            return
        if session.user is None and not session:
            # An anonymous session that holds nothing any more (its sign-in finished or expired).
            self.client.delete(keys.session_key(None, session.member or session.sid))
            self._delete_cookie(app, response)
            return
        if self._write(session, session.version) is None:
            # The record this request read is gone (sign-out, revocation, expiry): do not revive it.
            log.info("session ended during the request; its changes are dropped")

    def _write(self, session: StoredSession, expected: str) -> dict[str, Any] | None:
        """Compare-and-set the app data against the version read (`expected`), merging with concurrent
        writes; returns what was stored, or None if the record is gone."""
        store_key = keys.session_key(session.user, session.member or session.sid)
        base, mine = session.loaded or {}, dict(session)
        for _ in range(MAX_WRITE_ATTEMPTS):
            result = self.scripts.write(keys=[store_key], args=[expected, encode_data(mine)])
            outcome = int(result[0])
            if outcome == _WRITTEN:
                session.loaded, session.version = mine, result[1].decode()
                return mine
            if outcome == _GONE:
                return None
            theirs = decode_data(result[1])
            mine = merge_session(base, mine, theirs)
            base, expected = theirs, result[2].decode()
        raise SessionWriteConflict(f"session changed {MAX_WRITE_ATTEMPTS} times while being saved")

    def _set_cookie(self, app: Flask, session: StoredSession, response: Response) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            session.sid,
            expires=None,
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        vary_on_cookie(response)

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=True,
            samesite=self.get_cookie_samesite(app),
        )
        vary_on_cookie(response)

    # Ending and renewing

    # Called only with this store's own sessions (flask.session), always StoredSessions.
    def regenerate(self, session: StoredSession) -> None:  # type: ignore[override]
        """Drop the stored record and continue under a fresh anonymous id (prevents session fixation)."""
        if session.version is not None:
            self.end(session)
        session.sid = session.member = keys.new_random()
        session.user = session.loaded = session.version = session.identity = None
        session.destroyed = False
        session.modified = True

    def end(self, session: StoredSession) -> None:
        """Delete the session's record (and, when signed in, its tokens and index entry) now."""
        member = session.member or session.sid
        if session.user is None:
            self.client.delete(keys.session_key(None, member))
            return
        self.scripts.replicated(
            self.scripts.end_sessions,
            keys=[keys.user_key(session.user), keys.index_key(session.user)],
            args=[
                keys.session_key(session.user, ""),
                keys.tokens_key(session.user, ""),
                "member",
                member,
                "",
                time.time(),
            ],
        )

    def destroy(self, session: StoredSession) -> None:
        """End the session now: its record is deleted and its cookie cleared at the end of the request."""
        self.end(session)
        empty(session)
        session.destroyed = True
        session.modified = True


def empty(session: StoredSession) -> None:
    """Remove every key (Flask-Session's clear() would leave its "_permanent" marker behind)."""
    for key in list(session):
        del session[key]


def init_session_store(app: Flask, client: Redis) -> None:
    """Install the Redis session store on the app."""
    app.session_interface = RedisSessionStore(app, client, app.config)
    app.before_request(reject_when_store_unavailable)


def session_store(app: Flask) -> RedisSessionStore:
    """The app's session store (typed)."""
    store = app.session_interface
    if not isinstance(store, RedisSessionStore):
        raise TypeError("the app's session interface is not Gatehouse's Redis store")
    return store


def reject_when_store_unavailable() -> None:
    """Answer 503 when the session store could not be read (health checks excepted)."""
    if getattr(session, "unavailable", False) and request.endpoint not in SESSIONLESS_ENDPOINTS:
        abort(503)


def store_answers(app: Flask | None = None) -> bool:
    """True when the session store's Redis answers (the readiness check asks this)."""
    try:
        return bool(session_store(app or current_app).client.ping())
    except REDIS_UNAVAILABLE:
        return False
