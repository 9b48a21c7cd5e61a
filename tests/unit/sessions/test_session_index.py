"""sessions/lua/lib/session_index.lua: the index of a user's sessions lives in the user's state, one field per session;
an index stored the older way (a sorted set of its own) is still read and emptied, so no session escapes a revoke."""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sessions import keys
from sessions.lifecycle import end_sessions
from sessions.user_state import delete_user_state, set_disabled
from tests.support.session_records import indexed_sessions
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, session_exists, session_id, sign_in
from tests.unit.mock_provider import MockProvider


def signed_in_as(app: Flask, provider: MockProvider, subject: str = "alice") -> tuple[FlaskClient, str, str]:
    """A browser signed in as `subject`: (browser, user tag, random part of its session id)."""
    browser = app.test_client()
    assert sign_in(browser, provider, subject).status_code == 302
    parsed = keys.parse_sid(session_id(app, browser))
    assert parsed is not None and parsed[0] is not None
    return browser, parsed[0], parsed[1]


def index_the_old_way(redis: RecordingRedis, user: str, member: str) -> None:
    """Move one session's index entry into the sorted set a process of the previous version writes."""
    field = keys.index_field(member)
    latest = float(redis.hget(keys.user_key(user), field))
    redis.hdel(keys.user_key(user), field)
    redis.zadd(keys.index_key(user), {member: latest})
    redis.expire(keys.index_key(user), 3600)


class TwoDevices(NamedTuple):
    """Two sessions of one user, the older indexed the way the previous version did."""

    user: str
    old_browser: FlaskClient
    old_member: str
    new_browser: FlaskClient
    new_member: str


def two_devices_one_indexed_the_old_way(app: Flask, provider: MockProvider, redis: RecordingRedis) -> TwoDevices:
    """Sign in twice as the same user, then move the first session's entry into the older sorted set."""
    old_browser, user, old_member = signed_in_as(app, provider)
    new_browser, _, new_member = signed_in_as(app, provider)
    index_the_old_way(redis, user, old_member)
    return TwoDevices(user, old_browser, old_member, new_browser, new_member)


def test_a_sign_in_indexes_its_session_in_the_user_s_state_and_no_key_of_its_own(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    _, user, member = signed_in_as(app, provider)

    assert not fake_redis.exists(keys.index_key(user))
    latest = float(fake_redis.hget(keys.user_key(user), keys.index_field(member)))
    session_ends_by = time.time() + fake_redis.pttl(keys.session_key(user, member)) / 1000
    assert latest == int(latest) and latest >= session_ends_by - 1
    # The state outlives the entry: the index cannot vanish before the session it lists.
    assert time.time() + fake_redis.ttl(keys.user_key(user)) > latest


def test_a_session_the_previous_version_indexed_is_listed_once_and_revoked(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    devices = two_devices_one_indexed_the_old_way(app, provider, fake_redis)
    # A member in both forms (a page of this version slid an entry of the previous one) counts once.
    fake_redis.zadd(keys.index_key(devices.user), {devices.new_member: time.time() + 3600})

    page = devices.new_browser.get("/sessions")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('data-testid="revoke-session"') == 1  # the other device; not this one

    with app.app_context():
        assert end_sessions(devices.user, "all") == 2
    assert indexed_sessions(fake_redis, devices.user) == {}
    for browser in (devices.old_browser, devices.new_browser):
        assert not session_exists(fake_redis, session_id(app, browser))


@pytest.mark.parametrize("ending", ["disable", "delete"])
def test_disabling_or_deleting_ends_sessions_in_either_form_of_the_index(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis, ending: str
) -> None:
    devices = two_devices_one_indexed_the_old_way(app, provider, fake_redis)

    with app.app_context():
        ended = set_disabled(devices.user, True)[1] if ending == "disable" else delete_user_state(devices.user)[1]

    assert ended == 2
    assert indexed_sessions(fake_redis, devices.user) == {}
    for browser in (devices.old_browser, devices.new_browser):
        assert not session_exists(fake_redis, session_id(app, browser))
        assert browser.get("/dashboard").status_code == 302


def test_the_next_sign_in_drops_expired_entries_of_both_forms(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    devices = two_devices_one_indexed_the_old_way(app, provider, fake_redis)
    past = int(time.time()) - 1
    fake_redis.zadd(keys.index_key(devices.user), {devices.old_member: past})
    fake_redis.hset(keys.user_key(devices.user), keys.index_field(devices.new_member), past)

    _, _, latest_member = signed_in_as(app, provider)

    assert set(indexed_sessions(fake_redis, devices.user)) == {latest_member}


def test_the_session_cap_counts_both_forms_and_ends_the_oldest(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app(SESSIONS_PER_USER=2)
    devices = two_devices_one_indexed_the_old_way(app, provider, fake_redis)

    _, _, newest_member = signed_in_as(app, provider)

    assert set(indexed_sessions(fake_redis, devices.user)) == {devices.new_member, newest_member}
    assert not session_exists(fake_redis, session_id(app, devices.old_browser))


def test_session_layout_whole_indexes_in_the_sorted_set_the_previous_version_reads(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    app = make_app(SESSION_LAYOUT="whole")
    _, user, member = signed_in_as(app, provider)

    assert fake_redis.zscore(keys.index_key(user), member) is not None
    assert fake_redis.ttl(keys.index_key(user)) > 0
    assert not fake_redis.hexists(keys.user_key(user), keys.index_field(member))


def test_a_lowered_cap_ends_every_session_over_it_at_the_next_sign_in(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    roomy = make_app(SESSIONS_PER_USER=4)
    devices = two_devices_one_indexed_the_old_way(roomy, provider, fake_redis)
    third, _, third_member = signed_in_as(roomy, provider)

    capped = make_app(SESSIONS_PER_USER=2)
    _, _, newest_member = signed_in_as(capped, provider)

    # Over the cap by two: the two oldest sign-ins end together, whichever form indexed them.
    assert set(indexed_sessions(fake_redis, devices.user)) == {third_member, newest_member}
    for browser in (devices.old_browser, devices.new_browser):
        assert not session_exists(fake_redis, session_id(roomy, browser))
    assert session_exists(fake_redis, session_id(roomy, third))
