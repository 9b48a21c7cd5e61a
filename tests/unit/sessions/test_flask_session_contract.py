"""What sessions/store.py relies on from Flask-Session (public API only), pinned so an upgrade that changes it
fails here first."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SessionInterface
from flask_session.redis import RedisSession, RedisSessionInterface

from sessions.store import RedisSessionStore, StoredSession, session_store


def test_the_session_is_a_dict_that_tracks_changes() -> None:
    stored = StoredSession({"a": 1}, sid="some-id", permanent=False)
    assert isinstance(stored, RedisSession)
    assert stored.sid == "some-id"
    assert dict(stored) == {"a": 1}
    assert not stored.modified
    stored["b"] = 2
    assert stored.modified
    assert StoredSession(sid="other", permanent=False) == {}


def test_the_store_is_flask_sessions_redis_interface_on_the_apps_client(app: Flask) -> None:
    store = session_store(app)
    assert isinstance(store, RedisSessionStore)
    assert isinstance(store, RedisSessionInterface)
    assert isinstance(store, SessionInterface)
    assert store.session_class is StoredSession
    assert store.client is not None
    # The cookie settings come from Flask's SessionInterface helpers.
    assert store.get_cookie_name(app) == app.config["SESSION_COOKIE_NAME"]
    for helper in ("get_cookie_httponly", "get_cookie_domain", "get_cookie_path", "get_cookie_secure"):
        getattr(store, helper)(app)
    assert store.get_cookie_samesite(app) == app.config["SESSION_COOKIE_SAMESITE"]
    # Gatehouse overrides reading and writing entirely.
    assert RedisSessionStore.open_session is not RedisSessionInterface.open_session
    assert RedisSessionStore.save_session is not RedisSessionInterface.save_session
