"""sessions/store.py: one Redis round trip per page, sliding and absolute expiry, fresh ids, compare-and-set
writes that merge and never revive, msgpack only, 503 when Redis is down."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable

import fakeredis
import pytest
from flask import Flask, jsonify, session
from flask.testing import FlaskClient

import connections
from sessions import keys
from sessions.lifecycle import end_sessions
from sessions.store import merge_session, session_store
from tests.support.session_records import indexed_sessions, move_tokens_beside
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    assert_sent_to_sign_in,
    counting_queries,
    rewrite_session,
    session_exists,
    session_id,
    session_keys,
    sign_in,
    stored_session,
)
from tests.unit.mock_provider import MockProvider

# Set by unpickling PICKLE_BOMB: proves whether the store ever ran pickle on session data.
UNPICKLED: list[str] = []


def record_unpickling() -> dict[str, int]:
    """What unpickling PICKLE_BOMB calls."""
    UNPICKLED.append("unpickled")
    return {"x": 1}


class PickleBomb:
    """Unpickles by calling `record_unpickling` (a stand-in for an attacker's code)."""

    def __reduce__(self) -> tuple[Callable[[], dict[str, int]], tuple[()]]:
        return record_unpickling, ()


def script_calls(redis: RecordingRedis, sha: str) -> list[tuple]:
    """The EVALSHA commands of one script among the recorded commands."""
    return [command for command in redis.commands if command[:2] == ("EVALSHA", sha)]


def record_key(sid: str) -> str:
    """The Redis key of a session's record."""
    parsed = keys.parse_sid(sid)
    assert parsed is not None
    return keys.session_key(*parsed)


def tokens_key(sid: str) -> str:
    """The Redis key of a signed-in session's tokens."""
    user, member = keys.parse_sid(sid)
    assert user is not None
    return keys.tokens_key(user, member)


def test_a_signed_in_page_costs_one_redis_round_trip_and_no_query(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    user, member = keys.parse_sid(sid)
    read = session_store(app).scripts.read
    for path in ("/", "/profile"):
        fake_redis.commands.clear()
        with counting_queries(app) as statements:
            page = signed_in.get(path)
        assert page.status_code == 200
        assert "Alice" in page.get_data(as_text=True)
        # One EVALSHA of the read script, on this session's keys only: no write for an unchanged session.
        (command,) = fake_redis.commands
        assert command[:3] == ("EVALSHA", read.sha, 4)
        assert command[3:7] == (
            keys.session_key(user, member),
            keys.user_key(user),
            keys.index_key(user),
            keys.tokens_key(user, member),
        )
        assert statements == []
        assert "Set-Cookie" not in page.headers
        assert page.headers["Cache-Control"] == "no-store"


def test_a_page_view_slides_the_idle_expiry_with_the_last_seen_time_without_rewriting_the_data(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    key = record_key(sid)
    # Tokens too long for pieces, or stored before 2026-12, are a key beside the session: it slides too.
    move_tokens_beside(fake_redis, sid)
    data, version = fake_redis.hmget(key, "d", "v")
    fake_redis.expire(key, 5)
    fake_redis.expire(tokens_key(sid), 5)
    fake_redis.hset(key, "seen", int(time.time()) - app.config["SESSION_LAST_SEEN_INTERVAL"])
    fake_redis.commands.clear()
    assert signed_in.get("/").status_code == 200
    slid_to = app.config["SESSION_IDLE_TIMEOUT"] + app.config["SESSION_LAST_SEEN_INTERVAL"]
    assert slid_to - 5 < fake_redis.ttl(key) <= slid_to
    assert slid_to - 5 < fake_redis.ttl(tokens_key(sid)) <= slid_to
    assert fake_redis.hmget(key, "d", "v") == [data, version]
    assert script_calls(fake_redis, session_store(app).scripts.write.sha) == []
    assert_index_score_covers(fake_redis, sid)


def assert_index_score_covers(redis: RecordingRedis, sid: str) -> None:
    """The session's score in its user's index is a whole second (a small integer in the listpack), not before
    the moment the session can end: trimming the index by score never drops a live session."""
    user, member = keys.parse_sid(sid)  # type: ignore[misc]
    score = indexed_sessions(redis, user).get(member)
    assert score is not None and score == int(score)
    assert score >= time.time() + redis.pttl(record_key(sid)) / 1000 - 1


def test_a_new_session_s_index_score_is_a_whole_second_no_earlier_than_its_end(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    assert_index_score_covers(fake_redis, session_id(app, signed_in))


def test_a_page_view_within_the_last_seen_interval_writes_nothing(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    """Seen a moment ago: the page changes neither the expiry nor the record (no write to replicate or log)."""
    sid = session_id(app, signed_in)
    key = record_key(sid)
    fake_redis.expire(key, 500)
    before = fake_redis.hgetall(key)
    assert signed_in.get("/").status_code == 200
    assert 490 < fake_redis.ttl(key) <= 500
    assert fake_redis.hgetall(key) == before


def test_an_idle_session_ends(app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis) -> None:
    fake_redis.delete(record_key(session_id(app, signed_in)))  # what Redis does when the idle TTL runs out
    assert_sent_to_sign_in(signed_in)


def test_the_absolute_timeout_ends_a_recently_used_session(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    rewrite_session(app, fake_redis, sid, created_at=time.time() - app.config["SESSION_ABSOLUTE_TIMEOUT"] - 5)
    assert signed_in.get("/").status_code == 200  # recently used: the idle expiry alone would keep it
    assert not session_exists(fake_redis, sid)
    assert not fake_redis.exists(tokens_key(sid))
    assert_sent_to_sign_in(signed_in)


def test_a_session_younger_than_the_absolute_timeout_lives_on(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    rewrite_session(app, fake_redis, sid, created_at=time.time() - app.config["SESSION_ABSOLUTE_TIMEOUT"] + 60)
    assert signed_in.get("/profile").status_code == 200
    assert session_exists(fake_redis, sid)


@pytest.mark.parametrize(
    "made_up",
    [
        pytest.param("attacker-chosen-id", id="malformed"),
        pytest.param(keys.new_random(), id="well-formed-anonymous"),
        pytest.param(keys.signed_in_sid(keys.user_tag("https://idp", "alice"), keys.new_random()), id="signed-in"),
    ],
)
def test_a_made_up_session_id_is_never_adopted(
    app: Flask, client: FlaskClient, fake_redis: RecordingRedis, made_up: str
) -> None:
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, made_up)
    assert client.get("/login").status_code == 302  # stores the login state: the session is written
    assert session_id(app, client) != made_up
    assert not session_exists(fake_redis, made_up)
    assert stored_session(app, fake_redis, session_id(app, client)) is not None


def test_anonymous_pages_store_nothing(client: FlaskClient, fake_redis: RecordingRedis) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Set-Cookie" not in page.headers
    assert list(fake_redis.scan_iter(match=f"{keys.PREFIX}*")) == []


def app_with_writer(make_app: AppFactory, meanwhile: list[Callable[[], None]]) -> Flask:
    """An app with GET /test/set/<key>/<value>, which sets a session key and runs `meanwhile` before saving."""
    app = make_app()

    @app.get("/test/set/<key>/<value>")
    def set_value(key: str, value: str) -> str:
        session[key] = value
        for action in meanwhile:
            action()
        return "set"

    @app.get("/test/data")
    def data() -> object:
        return jsonify(sorted(session.keys()))

    return app


def test_a_concurrent_write_is_merged_not_lost(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    meanwhile: list[Callable[[], None]] = []
    app = app_with_writer(make_app, meanwhile)
    browser = app.test_client()
    sign_in(browser, provider)
    sid = session_id(app, browser)
    version_read = fake_redis.hget(record_key(sid), "v").decode()
    # Another request of this session stores its own change while this one runs.
    meanwhile.append(lambda: rewrite_session(app, fake_redis, sid, theirs="kept"))
    fake_redis.commands.clear()
    assert browser.get("/test/set/mine/stored").status_code == 200
    stored = stored_session(app, fake_redis, sid)
    assert (stored["mine"], stored["theirs"]) == ("stored", "kept")
    # The compare-and-set against the version read failed; the merged data went in against the other
    # request's version (a script's first call may be repeated once, after loading it into Redis).
    writes = script_calls(fake_redis, session_store(app).scripts.write.sha)
    expected_versions = list(dict.fromkeys(command[4] for command in writes))
    assert expected_versions == [version_read, str(int(version_read) + 1)]


def test_merging_keeps_both_sides_and_the_newer_versioned_value() -> None:
    base = {"a": 1, "gone": 1, "kept": 1, "prefs": {"version": 1}}
    mine = {"a": 2, "kept": 1, "prefs": {"version": 2}, "new": True}
    theirs = {"a": 1, "gone": 1, "kept": 3, "prefs": {"version": 5}, "other": True}
    assert merge_session(base, mine, theirs) == {
        "a": 2,  # only I changed it
        "kept": 3,  # only they changed it
        "prefs": {"version": 5},  # both changed it: the newer version wins
        "new": True,
        "other": True,
        # "gone": I removed it and they left it unchanged
    }
    # A key I removed that they changed meanwhile stays, with their value.
    assert merge_session({"k": 1}, {}, {"k": 2}) == {"k": 2}


def test_a_session_ended_during_a_request_is_not_revived(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    meanwhile: list[Callable[[], None]] = []
    app = app_with_writer(make_app, meanwhile)
    browser = app.test_client()
    sign_in(browser, provider)
    sid = session_id(app, browser)
    user, _ = keys.parse_sid(sid)
    # "Sign out everywhere" from another browser while this request runs.
    meanwhile.append(lambda: end_sessions(user, "all", app=app))
    assert browser.get("/test/set/late/change").status_code == 200
    assert not session_exists(fake_redis, sid)
    assert session_keys(fake_redis) == []
    meanwhile.clear()
    assert_sent_to_sign_in(browser)


def test_session_data_is_msgpack_only_never_unpickled(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with_writer(make_app, [])
    browser = app.test_client()
    sign_in(browser, provider)
    sid = session_id(app, browser)
    fake_redis.hset(record_key(sid), "d", pickle.dumps(PickleBomb()))
    UNPICKLED.clear()
    with caplog.at_level(logging.WARNING, logger="sessions.store"):
        answer = browser.get("/test/data")
    assert answer.status_code == 200
    assert UNPICKLED == []
    assert "x" not in answer.get_json()
    assert "not msgpack" in caplog.text
    assert browser.get("/profile").status_code == 200  # still signed in: only the app data was unreadable


def test_redis_down_gives_a_quick_503_and_health_checks_still_answer(
    app: Flask, signed_in: FlaskClient, redis_server: fakeredis.FakeServer
) -> None:
    redis_server.connected = False
    # How quickly a real outage answers is the client's settings (below), not a time measured on fakeredis.
    page = signed_in.get("/profile")
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


def test_the_app_s_redis_client_gives_up_within_its_socket_timeout_and_never_retries() -> None:
    client = connections.make_redis("redis://127.0.0.1:1/0", socket_timeout=0.5, max_connections=2)
    options = client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == 0.5
    assert options["socket_connect_timeout"] == 0.5
    assert options["retry"].get_retries() == 0
    assert client.connection_pool.timeout == 0.5  # waiting for a free pooled connection is bounded too
    client.close()
