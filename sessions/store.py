"""Flask-Session's Redis store, tightened for sign-in sessions.

What this subclass changes, and why:
- One round trip per page: the record is read with GETEX, which also slides the
  idle expiry, so an unchanged session is never written back.
- No lost updates: a changed session is written with a compare-and-set (a Lua
  script) against the record this request read, identified by its SHA-1. If
  another request wrote in between, the two sets of changes are merged key by
  key (see `merge_session`) and the write is retried, instead of the last writer
  silently undoing the other's changes.
- No resurrection: if the record this request read has disappeared (sign-out,
  a new sign-in regenerated the id, expiry), the write is dropped, so a request
  still in flight at logout cannot bring the session back.
- Absolute timeout: a record older than SESSION_ABSOLUTE_TIMEOUT (from sign-in)
  is deleted on read, whatever its idle expiry says.
- Redis down: the request gets a session marked `unavailable` (turned into a 503
  page by `reject_when_store_unavailable`) instead of a traceback.
- Records are decoded as msgpack only (Flask-Session would fall back to pickle).
- `regenerate` always issues a new id, even for an empty session, and `destroy`
  deletes the record and the cookie so nothing added later (a flash) revives it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from flask import Flask, Request, Response, abort, request, session
from flask_session.redis import RedisSession, RedisSessionInterface
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "session:"
SID_BYTES = 32  # secrets.token_urlsafe(32): 256 bits of randomness
CREATED_AT = "created_at"
# Concurrent writers on one session each win a round; this many rounds is far beyond
# what a browser's parallel requests produce.
MAX_WRITE_ATTEMPTS = 50

# Endpoints that must answer while Redis is down (health checks, static files).
SESSIONLESS_ENDPOINTS = {"health.healthz", "health.readyz", "static"}

# KEYS[1] session key; ARGV[1] SHA-1 of the record the request read ("" for a new
# session), ARGV[2] the record to store ("" to delete it), ARGV[3] idle timeout.
# Returns {1} when written, {-1} when the record read has gone, {0, current} on conflict.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return {0, current} end
elseif not current then
  return {-1}
elseif redis.sha1hex(current) ~= ARGV[1] then
  return {0, current}
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return {1}
"""

_WRITTEN, _CONFLICT, _GONE = 1, 0, -1
_MISSING = object()


class SessionWriteConflict(RedisError):
    """A session could not be written after MAX_WRITE_ATTEMPTS merges (answered as 503)."""


class StoredSession(RedisSession):
    """A session that remembers the record it was read from, plus two flags the store understands."""

    unavailable = False
    destroyed = False
    # The raw record this request read and the id it was read under (None: a new session).
    loaded_raw: bytes | None = None
    loaded_sid: str | None = None


def digest(raw: bytes) -> str:
    """The version of a stored record: its SHA-1, as Redis's sha1hex computes it."""
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def merge_session(base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Three-way merge of session contents, key by key.

    `base` is what this request read, `mine` what it wants to store, `theirs` what
    another request stored meanwhile. Keys this request did not touch keep their
    value. Keys it set win, except that of two versioned values (dicts with an int
    "version", like the profile) the newer one wins. A key it removed is removed
    only if the other request left it unchanged.
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

    def __init__(self, app: Flask, client: Redis, *, idle_timeout: int, absolute_timeout: int):
        super().__init__(
            app,
            client=client,
            key_prefix=KEY_PREFIX,
            use_signer=False,
            permanent=False,
            sid_length=SID_BYTES,
            serialization_format="msgpack",
        )
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)

    # Reading

    def open_session(self, app: Flask, request: Request) -> StoredSession:
        try:
            return self._open(app, request)
        except RedisError:
            app.logger.warning("session store unreachable; answering 503")
            stand_in = self.session_class(sid=self._generate_sid(self.sid_length))
            stand_in.unavailable = True
            return stand_in

    def _open(self, app: Flask, request: Request) -> StoredSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            record = self._read_record(self._get_store_id(sid))
            if record is not None:
                raw, data = record
                stored = self.session_class(data, sid=sid)
                stored.loaded_raw, stored.loaded_sid = raw, sid
                return stored
        return self.session_class(sid=self._generate_sid(self.sid_length), permanent=self.permanent)

    def _read_record(self, store_id: str) -> tuple[bytes, dict[str, Any]] | None:
        """GETEX the record (sliding its idle expiry); None if absent, unreadable or past the absolute timeout."""
        raw = self.client.getex(store_id, ex=self.idle_timeout)
        if raw is None:
            return None
        data = self._decode(raw)
        if data is None:
            return None
        created_at = data.get(CREATED_AT)
        if isinstance(created_at, int | float) and time.time() - created_at > self.absolute_timeout:
            self.client.delete(store_id)
            return None
        return raw, data

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        record = self._read_record(store_id)
        return None if record is None else record[1]

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        """msgpack only: never Flask-Session's pickle fallback, whatever the record holds."""
        try:
            data = msgspec.msgpack.decode(raw)
        except msgspec.DecodeError:
            log.warning("ignoring a session record that is not msgpack")
            return None
        return data if isinstance(data, dict) else None

    # Writing

    def save_session(self, app: Flask, session: StoredSession, response: Response) -> None:
        if session.unavailable:
            return
        if session.destroyed:
            self._delete_session(self._get_store_id(session.sid))
            self._delete_cookie(app, response)
            return
        if session.accessed:
            response.vary.add("Cookie")
        if not self.should_set_storage(app, session):
            return
        loaded = session.loaded_raw if session.loaded_sid == session.sid else None
        if loaded is None and not session:
            # Nothing stored and nothing to store: just drop a stale cookie, if any.
            if session.modified:
                self._delete_cookie(app, response)
            return
        stored = self._write(session, loaded)
        if stored is None:
            # The record this request read is gone (sign-out, new sign-in, expiry): do not revive it.
            log.info("session ended during the request; its changes are dropped")
            return
        if not stored:
            self._delete_cookie(app, response)
            return
        if self.should_set_cookie(app, session):
            self._set_cookie(app, session, response)

    def _write(self, session: StoredSession, loaded: bytes | None) -> dict[str, Any] | None:
        """Compare-and-set the session against the record it was `loaded` from (None: new), merging
        with concurrent writes; returns what was stored ({} when deleted), or None if the record is gone."""
        store_id = self._get_store_id(session.sid)
        expected, base = ("", {}) if loaded is None else (digest(loaded), self._decode(loaded) or {})
        mine = dict(session)
        for _ in range(MAX_WRITE_ATTEMPTS):
            payload = self.serializer.encoder.encode(mine) if mine else b""
            result = self._compare_and_set(keys=[store_id], args=[expected, payload, self.idle_timeout])
            outcome = int(result[0])
            if outcome == _WRITTEN:
                return mine
            if outcome == _GONE:
                return None
            theirs_raw = result[1]
            theirs = self._decode(theirs_raw) or {}
            mine = merge_session(base, mine, theirs)
            base, expected = theirs, digest(theirs_raw)
        raise SessionWriteConflict(f"session changed {MAX_WRITE_ATTEMPTS} times while being saved")

    def _set_cookie(self, app: Flask, session: StoredSession, response: Response) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            session.sid,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=True,
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    # Ending and renewing

    def regenerate(self, session: StoredSession) -> None:
        """Give the session a fresh id and drop the old record (prevents session fixation)."""
        self._delete_session(self._get_store_id(session.sid))
        session.sid = self._generate_sid(self.sid_length)
        session.loaded_raw = session.loaded_sid = None
        session.modified = True

    def destroy(self, session: StoredSession) -> None:
        """End the session: its record is deleted and its cookie cleared at the end of the request."""
        session.clear()
        session.destroyed = True
        session.modified = True


def init_session_store(app: Flask, client: Redis) -> None:
    """Install the Redis session store on the app."""
    app.session_interface = RedisSessionStore(
        app,
        client,
        idle_timeout=app.config["SESSION_IDLE_TIMEOUT"],
        absolute_timeout=app.config["SESSION_ABSOLUTE_TIMEOUT"],
    )
    app.before_request(reject_when_store_unavailable)


def reject_when_store_unavailable() -> None:
    """Answer 503 when the session store could not be read (health checks excepted)."""
    if getattr(session, "unavailable", False) and request.endpoint not in SESSIONLESS_ENDPOINTS:
        abort(503)
