"""Flask-Session's Redis store, tightened for sign-in sessions.

What this subclass changes, and why:
- One round trip per page: the record is read with GETEX, which also slides the
  idle expiry, so an unchanged session is never written back.
- Absolute timeout: a record older than SESSION_ABSOLUTE_TIMEOUT (from sign-in)
  is deleted on read, whatever its idle expiry says.
- Redis down: the request gets a session marked `unavailable` (turned into a 503
  page by `reject_when_store_unavailable`) instead of a traceback.
- `regenerate` always issues a new id, even for an empty session, and `destroy`
  deletes the record and the cookie so nothing added later (a flash) revives it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, Request, Response, abort, request, session
from flask_session.redis import RedisSession, RedisSessionInterface
from redis import Redis
from redis.exceptions import RedisError

KEY_PREFIX = "session:"
SID_BYTES = 32  # secrets.token_urlsafe(32): 256 bits of randomness
CREATED_AT = "created_at"

# Endpoints that must answer while Redis is down (health checks, static files).
SESSIONLESS_ENDPOINTS = {"health.healthz", "health.readyz", "static"}


class StoredSession(RedisSession):
    """A session with two flags the store understands."""

    unavailable = False
    destroyed = False


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

    def open_session(self, app: Flask, request: Request) -> StoredSession:
        try:
            return super().open_session(app, request)
        except RedisError:
            app.logger.warning("session store unreachable; answering 503")
            stand_in = self.session_class(sid=self._generate_sid(self.sid_length))
            stand_in.unavailable = True
            return stand_in

    def save_session(self, app: Flask, session: StoredSession, response: Response) -> None:
        if session.unavailable:
            return
        if session.destroyed:
            self._delete_session(self._get_store_id(session.sid))
            response.delete_cookie(
                self.get_cookie_name(app),
                domain=self.get_cookie_domain(app),
                path=self.get_cookie_path(app),
                secure=self.get_cookie_secure(app),
                httponly=True,
                samesite=self.get_cookie_samesite(app),
            )
            response.vary.add("Cookie")
            return
        super().save_session(app, session, response)

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        raw = self.client.getex(store_id, ex=self.idle_timeout)
        if raw is None:
            return None
        data = self.serializer.decode(raw)
        created_at = data.get(CREATED_AT)
        if created_at is not None and time.time() - created_at > self.absolute_timeout:
            self.client.delete(store_id)
            return None
        return data

    def _upsert_session(self, session_lifetime: timedelta, session: StoredSession, store_id: str) -> None:
        self.client.set(store_id, self.serializer.encode(session), ex=self.idle_timeout)

    def regenerate(self, session: StoredSession) -> None:
        """Give the session a fresh id and drop the old record (prevents session fixation)."""
        self._delete_session(self._get_store_id(session.sid))
        session.sid = self._generate_sid(self.sid_length)
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
