"""The user's shared state expires USER_STATE_TTL after their last sign-in, unless kept on purpose (sign_in.lua).

It used to be read after the sign-in had written the state, when a brand-new state has no expiry yet (-1), which
sign_in.lua took for "kept on purpose": every user's state stayed in Redis for good.
"""

from __future__ import annotations

from flask import Flask

from sessions import keys
from sessions.scripts import LINKS, script_source
from tests.unit.helpers import RecordingRedis, sign_in
from tests.unit.mock_provider import ISSUER, MockProvider

STATE = keys.user_key(keys.user_tag(ISSUER, "alice"))


def signs_in(app: Flask, provider: MockProvider) -> None:
    assert sign_in(app.test_client(), provider, "alice").status_code == 302


def test_a_first_sign_in_gives_the_users_state_its_expiry(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signs_in(app, provider)
    assert app.config["USER_STATE_TTL"] - 5 <= fake_redis.ttl(STATE) <= app.config["USER_STATE_TTL"]


def test_a_state_an_earlier_version_left_without_expiry_gets_one_at_the_next_sign_in(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signs_in(app, provider)
    fake_redis.persist(STATE)
    signs_in(app, provider)
    assert fake_redis.ttl(STATE) > 0


def test_an_account_with_linked_identities_keeps_its_state_for_good(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signs_in(app, provider)
    # As link.lua leaves it: a linked identity finds its account through this state.
    fake_redis.hset(STATE, "l:" + "0" * 32, b"link record")
    fake_redis.persist(STATE)
    signs_in(app, provider)
    assert fake_redis.ttl(STATE) == -1


def test_a_later_sign_in_extends_a_shorter_expiry(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    signs_in(app, provider)
    fake_redis.expire(STATE, 100)
    signs_in(app, provider)
    assert fake_redis.ttl(STATE) > 100


def test_the_scripts_that_ask_for_linked_identities_carry_the_one_shared_check() -> None:
    for name in ("sign_in", "link"):
        source = script_source(name)
        assert LINKS.read_bytes() in source
        assert source.count(b"HKEYS") == 1  # the shared check's, not a copy of it
    assert b"has_links" not in script_source("read")
