"""A user's identity and profile in pieces of 64 bytes (sessions/long_fields.py, sessions/lua/lib/long_fields.lua).

Pieces keep the user's state in Redis's compact listpack encoding (every value at most 64 bytes);
a state written whole by an earlier version must still read the same, and is made compact again
by its next write. Whether Redis really keeps it a listpack is checked on a real Redis in
tests/integration/test_memory_layout.py: fakeredis has no encodings.
"""

from __future__ import annotations

import re

import msgspec
import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from sessions import keys
from sessions.long_fields import MAX_PIECES, PIECE_BYTES, join_pieces, piece_fields
from sessions.scripts import LONG_FIELDS, script_source
from sessions.store import StoredSession, session_store
from sessions.user_state import commit_profile, read_saved_profile, read_user_state, reserve_profile_version
from tests.support.records_before import IdentityBefore, ProfileBefore
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, session_id, sign_in
from tests.unit.mock_provider import ISSUER, MockProvider
from users.schema import Identity, Profile, encode

ALICE = keys.user_tag(ISSUER, "alice")
STATE = keys.user_key(ALICE)
PICTURE = "https://cdn.example.test/avatars/" + "a" * 150


def opened(app: Flask, client: FlaskClient) -> StoredSession:
    """The session as a page view reads it (read.lua)."""
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={session_id(app, client)}"
    with app.test_request_context("/", headers={"Cookie": cookie}):
        return session_store(app).open_session(app, request)


def signed_in_alice(app: Flask, provider: MockProvider) -> FlaskClient:
    browser = app.test_client()
    assert sign_in(browser, provider, "alice", picture=PICTURE, name="Alice Liddell").status_code == 302
    return browser


def state_fields(redis: RecordingRedis) -> dict[bytes, bytes]:
    return redis.hgetall(STATE)


def store_whole(redis: RecordingRedis, identity: bytes, profile: bytes) -> None:
    """Rewrite alice's state as Gatehouse wrote it before 2026-12: identity and profile each in one field."""
    redis.hdel(STATE, *piece_fields("i"), *piece_fields("p"))
    redis.hset(STATE, mapping={"i": identity, "p": profile})


def test_python_and_lua_agree_on_the_pieces() -> None:
    text = LONG_FIELDS.read_text()
    assert re.search(r"^local PIECE = (\d+)$", text, re.MULTILINE)[1] == str(PIECE_BYTES)  # type: ignore[index]
    assert re.search(r"^local MAX_PIECES = (\d+)$", text, re.MULTILINE)[1] == str(MAX_PIECES)  # type: ignore[index]


def test_only_scripts_that_use_the_pieces_carry_their_functions() -> None:
    assert LONG_FIELDS.read_bytes() in script_source("read")
    assert LONG_FIELDS.read_bytes() in script_source("sign_in")
    assert b"read_long" not in script_source("lease")


@pytest.mark.parametrize(
    ("values", "whole"),
    [
        ([None], None),
        ([b"short"], b"short"),
        ([b"x" * 100], b"x" * 100),  # stored whole: longer than a piece
        ([b"x" * 64, None], b"x" * 64),  # exactly one piece
        ([b"x" * 64, b"y" * 64, None], b"x" * 64 + b"y" * 64),  # a multiple of the piece size
        ([b"x" * 64, b"y" * 10, b"stale"], b"x" * 64 + b"y" * 10),  # reading stops at the short last piece
        ([b"x" * 100, b"stale"], b"x" * 100),  # a whole value ignores stray pieces
    ],
)
def test_join_pieces(values: list[bytes | None], whole: bytes | None) -> None:
    assert join_pieces(values) == whole


def test_a_forged_chain_of_pieces_is_read_no_further_than_the_limit() -> None:
    forged = [b"x" * PIECE_BYTES] * (MAX_PIECES + 10)
    assert join_pieces(forged) == b"x" * PIECE_BYTES * MAX_PIECES


def test_a_sign_in_stores_identity_and_profile_in_pieces_of_at_most_64_bytes(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser = signed_in_alice(app, provider)

    fields = state_fields(fake_redis)
    assert b"i2" in fields  # the identity with its picture is longer than one piece
    assert max(len(value) for value in fields.values()) <= PIECE_BYTES
    page = opened(app, browser)
    assert page.identity is not None and page.identity.picture == PICTURE
    assert page.identity.name == "Alice Liddell"
    with app.app_context():
        state = read_user_state(ALICE)
    assert state.identity == page.identity
    assert state.profile == page.profile


def test_a_state_stored_whole_by_the_previous_version_still_reads_and_its_next_write_makes_it_pieces(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser = signed_in_alice(app, provider)
    identity = Identity(issuer=ISSUER, subject="alice", email="alice@example.test", name="Old", picture=PICTURE)
    profile = Profile(display_name="Alice from before the upgrade", bio="b" * 80)
    store_whole(fake_redis, encode(identity, compact=False), encode(profile, compact=False))
    fake_redis.expire(STATE, 1000)

    page = opened(app, browser)
    assert page.signed_in and page.identity == identity and page.profile == profile
    with app.app_context():
        assert read_user_state(ALICE).identity == identity
        saved = read_saved_profile(ALICE)
        assert saved is not None and saved.profile == profile
        version = reserve_profile_version(ALICE)
        assert version is not None
        edited = Profile(display_name="Alice after", bio="c" * 90)
        assert commit_profile(ALICE, version, edited)

    fields = state_fields(fake_redis)
    assert max(len(value) for value in fields.values()) <= PIECE_BYTES  # the identity too, not only the profile
    assert 0 < fake_redis.ttl(STATE) <= 1000  # rewritten with the expiry it had
    page = opened(app, browser)
    assert page.identity == identity and page.profile == edited


def test_a_shorter_value_leaves_no_stale_pieces_behind(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser = signed_in_alice(app, provider)
    with app.app_context():
        for profile in (Profile(display_name="Alice", bio="long " * 60), Profile(display_name="Alice")):
            version = reserve_profile_version(ALICE)
            assert version is not None and commit_profile(ALICE, version, profile)
            assert opened(app, browser).profile == profile
    assert not {name.encode() for name in piece_fields("p")[1:]} & set(state_fields(fake_redis))


@pytest.mark.parametrize("pieces", [1, 2])
def test_a_profile_of_exactly_whole_pieces_reads_back(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis, pieces: int
) -> None:
    browser = signed_in_alice(app, provider)
    profile = next(
        candidate
        for length in range(1, 200)
        if len(encode(candidate := Profile(display_name="A", bio="b" * length))) == PIECE_BYTES * pieces
    )
    with app.app_context():
        version = reserve_profile_version(ALICE)
        assert version is not None and commit_profile(ALICE, version, profile)
    assert opened(app, browser).profile == profile


def test_a_value_too_long_for_pieces_is_stored_whole_and_reads_back(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    picture = "https://cdn.example.test/" + "p" * 2000  # PICTURE_MAX is 2048: far beyond 16 pieces
    browser = app.test_client()
    assert sign_in(browser, provider, "alice", picture=picture).status_code == 302

    fields = state_fields(fake_redis)
    assert b"i2" not in fields and len(fields[b"i"]) > PIECE_BYTES * MAX_PIECES
    page = opened(app, browser)
    assert page.identity is not None and page.identity.picture == picture


def test_the_lua_reader_stops_a_forged_chain_at_the_limit(fake_redis: RecordingRedis) -> None:
    reader = fake_redis.register_script(
        LONG_FIELDS.read_bytes() + b"\nreturn read_long(KEYS[1], 'p', redis.call('HGET', KEYS[1], 'p'))"
    )
    fake_redis.hset("forged", mapping={"p": b"x" * PIECE_BYTES})
    fake_redis.hset("forged", mapping={f"p{n}": b"x" * PIECE_BYTES for n in range(2, MAX_PIECES + 10)})
    assert reader(keys=["forged"]) == b"x" * PIECE_BYTES * MAX_PIECES


def test_app_data_stored_whole_by_the_previous_version_reads_and_the_next_write_stores_it_in_pieces(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    user, member = keys.parse_sid(sid)  # type: ignore[misc]
    record = keys.session_key(user, member)
    data = fake_redis.hgetall(record)
    assert b"d2" in data  # the CSRF token alone makes the app data longer than one piece
    whole = join_pieces([data.get(name.encode()) for name in piece_fields("d")])
    fake_redis.hdel(record, *piece_fields("d"))
    fake_redis.hset(record, "d", whole)  # as the previous version stored it

    assert opened(app, signed_in).get("csrf_token")  # read whole
    page = signed_in.get("/profile")
    assert page.status_code == 200
    with app.test_request_context("/", headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={sid}"}):
        stored = session_store(app).open_session(app, request)
        stored["note"] = "x" * 100
        assert session_store(app)._write(stored, stored.version or "") is not None
    after = fake_redis.hgetall(record)
    assert max(len(value) for value in after.values()) <= PIECE_BYTES
    assert opened(app, signed_in)["note"] == "x" * 100
    assert opened(app, signed_in).get("csrf_token")


def test_a_write_that_lost_the_race_merges_with_the_whole_app_data_in_pieces(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    cookie = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={sid}"}
    with app.test_request_context("/", headers=cookie):
        first = session_store(app).open_session(app, request)
        second = session_store(app).open_session(app, request)
        first["mine"] = "a" * 90
        assert session_store(app)._write(first, first.version or "") is not None
        second["theirs"] = "b" * 90
        assert session_store(app)._write(second, second.version or "") is not None  # merged with the first
    stored = opened(app, signed_in)
    assert stored["mine"] == "a" * 90 and stored["theirs"] == "b" * 90 and stored.get("csrf_token")


def test_session_layout_whole_writes_what_the_previous_version_reads(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app(SESSION_LAYOUT="whole")
    browser = signed_in_alice(app, provider)
    assert browser.get("/profile").status_code == 200  # the CSRF token: app data longer than a piece
    user, member = keys.parse_sid(session_id(app, browser))  # type: ignore[misc]

    state, record = fake_redis.hgetall(STATE), fake_redis.hgetall(keys.session_key(user, member))
    assert len(state[b"i"]) > PIECE_BYTES and b"i2" not in state  # as the previous version stored them
    # ... and in the form it decodes: maps by field name, never the compact arrays.
    assert msgspec.msgpack.decode(state[b"i"], type=IdentityBefore).picture == PICTURE
    assert msgspec.msgpack.decode(state[b"p"], type=ProfileBefore).display_name == "Alice Liddell"
    assert len(record[b"d"]) > PIECE_BYTES and b"d2" not in record and b"t" not in record
    assert fake_redis.type(keys.tokens_key(user, member)) == b"string"
    assert fake_redis.ttl(keys.tokens_key(user, member)) > 0
    page = opened(app, browser)
    assert page.identity is not None and page.identity.picture == PICTURE and page.get("csrf_token")


def test_a_bad_session_layout_is_refused(make_app: AppFactory) -> None:
    with pytest.raises(Exception, match="SESSION_LAYOUT"):
        make_app(SESSION_LAYOUT="pieces")
