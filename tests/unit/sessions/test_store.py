"""sessions/store.py: one Redis command per page, sliding and absolute expiry, fresh ids, 503 when Redis is down."""

from __future__ import annotations

import time

import fakeredis
from flask import Flask
from flask.testing import FlaskClient

from sessions.store import KEY_PREFIX
from tests.unit.helpers import RecordingRedis, counting_queries, rewrite_session, session_id, stored_session


def test_a_signed_in_page_costs_one_redis_command_and_no_query(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    for path in ("/", "/profile"):
        fake_redis.commands.clear()
        with counting_queries(app) as statements:
            page = signed_in.get(path)
        assert page.status_code == 200
        assert "Alice" in page.get_data(as_text=True)
        assert fake_redis.commands == [("GETEX", KEY_PREFIX + sid, "EX", app.config["SESSION_IDLE_TIMEOUT"])]
        assert statements == []
        assert "Set-Cookie" not in page.headers
        assert page.headers["Cache-Control"] == "no-store"


def test_a_page_view_slides_the_idle_expiry_without_rewriting_the_blob(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    key = KEY_PREFIX + session_id(app, signed_in)
    blob = fake_redis.get(key)
    fake_redis.expire(key, 5)
    fake_redis.commands.clear()
    assert signed_in.get("/").status_code == 200
    assert fake_redis.ttl(key) > app.config["SESSION_IDLE_TIMEOUT"] - 5
    assert fake_redis.get(key) == blob
    assert not any(command[0] == "SET" for command in fake_redis.commands)


def test_an_idle_session_ends(app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis) -> None:
    fake_redis.delete(KEY_PREFIX + session_id(app, signed_in))  # what Redis does when the idle TTL runs out
    page = signed_in.get("/profile")
    assert page.status_code == 302
    assert page.location.startswith("/login")


def test_the_absolute_timeout_ends_a_recently_used_session(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    rewrite_session(app, fake_redis, sid, created_at=time.time() - app.config["SESSION_ABSOLUTE_TIMEOUT"] - 5)
    assert signed_in.get("/").status_code == 200  # recently used: the idle expiry alone would keep it
    assert not fake_redis.exists(KEY_PREFIX + sid)
    page = signed_in.get("/profile")
    assert page.status_code == 302
    assert page.location.startswith("/login")


def test_a_session_younger_than_the_absolute_timeout_lives_on(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    rewrite_session(app, fake_redis, sid, created_at=time.time() - app.config["SESSION_ABSOLUTE_TIMEOUT"] + 60)
    assert signed_in.get("/profile").status_code == 200
    assert fake_redis.exists(KEY_PREFIX + sid)


def test_a_made_up_session_id_is_never_adopted(app: Flask, client: FlaskClient, fake_redis: RecordingRedis) -> None:
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, "attacker-chosen-id")
    assert client.get("/login").status_code == 302  # stores the login state: the session is written
    assert session_id(app, client) != "attacker-chosen-id"
    assert not fake_redis.exists(KEY_PREFIX + "attacker-chosen-id")
    assert stored_session(app, fake_redis, session_id(app, client)) is not None


def test_anonymous_pages_store_nothing(client: FlaskClient, fake_redis: RecordingRedis) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Set-Cookie" not in page.headers
    assert list(fake_redis.scan_iter(match=f"{KEY_PREFIX}*")) == []


def test_redis_down_gives_a_quick_503_and_health_checks_still_answer(
    app: Flask, signed_in: FlaskClient, redis_server: fakeredis.FakeServer
) -> None:
    redis_server.connected = False
    started = time.monotonic()
    page = signed_in.get("/profile")
    assert time.monotonic() - started < 1.0
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    assert signed_in.post("/logout").status_code == 503

    assert signed_in.get("/healthz").status_code == 200
    ready = signed_in.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"redis": "down", "queue": "down", "database": "ok"}

    redis_server.connected = True  # service resumes by itself
    assert signed_in.get("/profile").status_code == 200
    assert signed_in.get("/readyz").status_code == 200
