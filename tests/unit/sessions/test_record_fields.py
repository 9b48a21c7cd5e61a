"""sessions/record_fields.py and sign_in.lua's compact layout: what a session stores no longer (the handle, the
last-seen time before its first write, empty app data) and the shorter form of a UUID `sid`, each read the same,
and sessions stored the older way still listed, revoked and logged out."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sessions import keys
from sessions.lifecycle import end_sessions
from sessions.record_fields import UUID_MARK, provider_sid_text, session_handle, stored_provider_sid
from tests.support.session_records import plant_session
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, csrf_token, session_exists, session_id, sign_in, stored_session
from tests.unit.mock_provider import ISSUER, MockProvider

PROVIDER_SID = str(uuid.uuid4())
PROFILE = {"display_name": "Alice", "locale": "en", "timezone": "UTC", "version": 0}


def signed_in(app: Flask, provider: MockProvider, **claims: object) -> tuple[FlaskClient, str, str]:
    """A browser signed in as alice: (browser, user tag, random part of its session id)."""
    browser = app.test_client()
    assert sign_in(browser, provider, "alice", **claims).status_code == 302
    parsed = keys.parse_sid(session_id(app, browser))
    assert parsed is not None and parsed[0] is not None
    return browser, parsed[0], parsed[1]


def started_with_sid(app: Flask, provider_sid: str) -> tuple[str, str]:
    """A session of alice started from provider session `provider_sid`: (user tag, member)."""
    parsed = keys.parse_sid(plant_session(app, ISSUER, "alice", PROFILE, provider_sid=provider_sid))
    assert parsed is not None and parsed[0] is not None
    return parsed[0], parsed[1]


def test_a_handle_is_derived_one_way_from_the_random_part() -> None:
    member = keys.new_random()
    handle = session_handle(member)
    assert keys.HANDLE.match(handle) and len(handle) == 32
    assert session_handle(member) == handle  # the same session, the same name on every page
    assert session_handle(keys.new_random()) != handle
    assert member not in handle and member[:8] not in handle


def test_only_a_canonical_uuid_sid_takes_the_short_form() -> None:
    short = stored_provider_sid(PROVIDER_SID, compact=True)
    assert short == UUID_MARK + uuid.UUID(PROVIDER_SID).bytes and len(short) == 17
    assert provider_sid_text(short if isinstance(short, bytes) else short.encode()) == PROVIDER_SID
    for kept in (PROVIDER_SID.upper(), "{" + PROVIDER_SID + "}", PROVIDER_SID.replace("-", ""), "ses-42", ""):
        assert stored_provider_sid(kept, compact=True) == kept  # it would not come back as the same text
        assert provider_sid_text(kept.encode()) == kept
    assert stored_provider_sid(PROVIDER_SID, compact=False) == PROVIDER_SID


def test_a_sign_in_stores_no_handle_no_last_seen_and_no_empty_data(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser, user, member = signed_in(app, provider)
    record = fake_redis.hgetall(keys.session_key(user, member))

    assert b"h" not in record and b"seen" not in record and b"d" not in record
    created = record[b"c"].decode()
    assert len(created.partition(".")[2]) <= 3  # whole milliseconds
    # What it left out reads as before: its handle, its data, its last-seen time on /sessions.
    composed = stored_session(app, fake_redis, session_id(app, browser))
    assert composed is not None and composed["handle"] == session_handle(member)
    assert {key for key in composed if key not in ("handle", "provider_sid", "user", "profile", "tokens")} == {
        "created_at"
    }
    assert browser.get("/sessions").status_code == 200


def test_a_uuid_sid_is_stored_short_and_a_back_channel_logout_by_it_ends_the_session(
    app: Flask, fake_redis: RecordingRedis
) -> None:
    user, member = started_with_sid(app, PROVIDER_SID)
    assert fake_redis.hget(keys.session_key(user, member), "ps") == UUID_MARK + uuid.UUID(PROVIDER_SID).bytes

    with app.app_context():
        assert end_sessions(user, "provider_sid", str(uuid.uuid4())) == 0  # another provider session
        assert end_sessions(user, "provider_sid", PROVIDER_SID) == 1
    assert not fake_redis.exists(keys.session_key(user, member))


def test_a_session_storing_its_sid_as_text_is_still_logged_out_by_it(app: Flask, fake_redis: RecordingRedis) -> None:
    user, member = started_with_sid(app, PROVIDER_SID)
    fake_redis.hset(keys.session_key(user, member), "ps", PROVIDER_SID)  # as the previous version stored it
    _, other = started_with_sid(app, "not-a-uuid-sid")
    assert fake_redis.hget(keys.session_key(user, other), "ps") == b"not-a-uuid-sid"

    with app.app_context():
        assert end_sessions(user, "provider_sid", PROVIDER_SID) == 1
        assert end_sessions(user, "provider_sid", "not-a-uuid-sid") == 1
    assert not fake_redis.exists(keys.session_key(user, member))
    assert not fake_redis.exists(keys.session_key(user, other))


def test_a_session_without_a_sid_is_not_ended_by_someone_else_s(app: Flask, fake_redis: RecordingRedis) -> None:
    user, member = started_with_sid(app, "")
    with app.app_context():
        assert end_sessions(user, "provider_sid", PROVIDER_SID) == 0
        assert end_sessions(user, "provider_sid", "some-sid") == 0
    assert fake_redis.exists(keys.session_key(user, member))


def revoke(browser: FlaskClient, handle: str) -> int:
    """POST the devices page's revoke form for `handle`; the response status."""
    token = csrf_token(browser.get("/sessions").get_data(as_text=True))
    return browser.post(f"/sessions/{handle}/revoke", data={"csrf_token": token}).status_code


def test_revoking_by_a_derived_handle_ends_that_session_only(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    laptop, _, laptop_member = signed_in(app, provider)
    phone, _, phone_member = signed_in(app, provider)
    tablet, _, _ = signed_in(app, provider)
    assert session_handle(phone_member) in laptop.get("/sessions").get_data(as_text=True)

    assert revoke(laptop, session_handle(phone_member)) == 302

    assert not session_exists(fake_redis, session_id(app, phone))
    for browser in (laptop, tablet):
        assert session_exists(fake_redis, session_id(app, browser))
    # The laptop's own handle, the phone's again, another user's, and one of no session: 404, nothing ends.
    bob = app.test_client()
    assert sign_in(bob, provider, "bob").status_code == 302
    parsed = keys.parse_sid(session_id(app, bob))
    assert parsed is not None
    refused = (session_handle(laptop_member), session_handle(phone_member), session_handle(parsed[1]))
    for handle in (*refused, session_handle(keys.new_random()), "0" * 32, "A" * 22):
        assert revoke(laptop, handle) == 404
    assert session_exists(fake_redis, session_id(app, bob))
    assert session_exists(fake_redis, session_id(app, laptop))
    assert session_exists(fake_redis, session_id(app, tablet))


def test_a_session_keeping_the_random_handle_it_was_stored_with_is_listed_and_revoked_by_it(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    laptop, user, _ = signed_in(app, provider)
    phone, _, phone_member = signed_in(app, provider)
    older_handle = keys.new_random()[:22]
    fake_redis.hset(keys.session_key(user, phone_member), "h", older_handle)  # as the previous version stored it

    page = laptop.get("/sessions").get_data(as_text=True)
    assert older_handle in page and session_handle(phone_member) not in page
    assert revoke(laptop, session_handle(phone_member)) == 404  # not its name
    assert session_exists(fake_redis, session_id(app, phone))

    assert revoke(laptop, older_handle) == 302
    assert not session_exists(fake_redis, session_id(app, phone))


def test_a_session_is_seen_from_its_sign_in_until_its_first_write(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser, user, member = signed_in(app, provider)
    key = keys.session_key(user, member)
    every = app.config["SESSION_LAST_SEEN_INTERVAL"]

    assert browser.get("/profile").status_code == 200
    assert not fake_redis.hexists(key, "seen")  # a page within the interval writes nothing

    # One interval after the sign-in, the next page writes the last-seen time.
    fake_redis.hset(key, "c", float(fake_redis.hget(key, "c")) - every - 1)
    assert browser.get("/profile").status_code == 200
    assert abs(int(fake_redis.hget(key, "seen")) - time.time()) <= 2


def test_a_session_never_seen_since_its_sign_in_ends_when_idle_that_long(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser, user, member = signed_in(app, provider)
    key = keys.session_key(user, member)
    idle, every = app.config["SESSION_IDLE_TIMEOUT"], app.config["SESSION_LAST_SEEN_INTERVAL"]
    fake_redis.hset(key, "c", time.time() - idle - every - 1)

    assert browser.get("/profile").status_code == 302
    assert not fake_redis.exists(key)


@pytest.mark.parametrize("field", ["h", "seen", "d"])
def test_session_layout_whole_stores_what_the_previous_version_reads(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis, field: str
) -> None:
    app = make_app(SESSION_LAYOUT="whole")
    _, user, member = signed_in(app, provider)
    assert fake_redis.hexists(keys.session_key(user, member), field)
    if field == "h":
        # Random, in the 22 characters the previous version accepts on a revoke (not the derived 32 hex digits).
        stored = fake_redis.hget(keys.session_key(user, member), "h").decode()
        assert len(stored) == 22 and keys.HANDLE.match(stored) and stored != session_handle(member)


def test_session_layout_whole_stores_a_uuid_sid_as_text(make_app: AppFactory, fake_redis: RecordingRedis) -> None:
    app = make_app(SESSION_LAYOUT="whole")
    user, member = started_with_sid(app, PROVIDER_SID)
    assert fake_redis.hget(keys.session_key(user, member), "ps") == PROVIDER_SID.encode()
