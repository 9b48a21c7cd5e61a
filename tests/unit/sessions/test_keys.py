"""sessions/keys.py: what a session id looks like, and that anything else is refused."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from sessions import keys

USER = keys.user_tag("https://idp.example.test", "alice")
RANDOM = keys.new_random()


def test_well_formed_ids_parse() -> None:
    assert keys.parse_sid(keys.signed_in_sid(USER, RANDOM)) == (USER, RANDOM)
    assert keys.parse_sid(RANDOM) == (None, RANDOM)


def test_ids_are_random_and_the_user_tag_is_stable() -> None:
    assert keys.new_random() != keys.new_random()
    assert keys.user_tag("https://idp.example.test", "alice") == USER
    assert keys.user_tag("https://idp.example.test", "bob") != USER
    assert keys.user_tag("https://other.example.test", "alice") != USER
    # The tag is a fixed-size digest: it never shows the issuer or subject.
    assert len(USER) == 20
    assert "alice" not in USER


@pytest.mark.parametrize(
    "sid",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("attacker-chosen-id", id="short"),
        pytest.param(RANDOM[:-1], id="random-too-short"),
        pytest.param(RANDOM + "A", id="random-too-long"),
        pytest.param(RANDOM[:-1] + "=", id="padding"),
        pytest.param(RANDOM[:-1] + "/", id="not-url-safe"),
        pytest.param(RANDOM[:-1] + "+", id="plus"),
        pytest.param(" " + RANDOM[1:], id="space"),
        pytest.param(RANDOM + "\n", id="trailing-newline"),
        pytest.param(f"{USER}.{RANDOM}\n", id="signed-in-trailing-newline"),
        pytest.param(f"{USER[:-1]}.{RANDOM}", id="user-tag-too-short"),
        pytest.param(f"{USER}A.{RANDOM}", id="user-tag-too-long"),
        pytest.param(f"{USER}.{RANDOM}.{RANDOM}", id="two-dots"),
        pytest.param(f"{USER}:{RANDOM}", id="wrong-separator"),
        pytest.param(f"{USER}.", id="no-random-part"),
        pytest.param(f".{RANDOM}", id="no-user-tag"),
        pytest.param("{" + USER[1:-1] + "}." + RANDOM, id="hash-tag-braces"),
        pytest.param(f"{USER}.{RANDOM[:-1]}*", id="glob"),
        pytest.param("A" * 1000, id="huge"),
        pytest.param(f"{USER}.{RANDOM}".upper().replace(".", "\u2024"), id="unicode-dot"),
    ],
)
def test_malformed_ids_are_refused(sid: str | None) -> None:
    assert keys.parse_sid(sid) is None


def test_keys_of_one_user_share_its_hash_tag() -> None:
    tagged = [
        keys.user_key(USER),
        keys.index_key(USER),
        keys.session_key(USER, RANDOM),
        keys.tokens_key(USER, RANDOM),
        keys.lease_key(USER, RANDOM),
    ]
    assert all(key.startswith(f"{keys.PREFIX}{{{USER}}}:") for key in tagged)
    assert len(set(tagged)) == len(tagged)
    assert keys.session_key(None, RANDOM) == f"{keys.PREFIX}a:{RANDOM}"


def test_every_key_of_a_user_hashes_to_one_cluster_slot() -> None:
    member = keys.new_random()
    user_keys = [*keys.signed_in_keys(USER, member), keys.lease_key(USER, member)]
    assert len({key_slot(key.encode()) for key in user_keys}) == 1
    # The scripts build session and token keys from these prefixes: the same slot too.
    assert key_slot(keys.session_key(USER, "").encode()) == key_slot(keys.user_key(USER).encode())


def test_ten_thousand_users_spread_evenly_over_three_primaries() -> None:
    """A cluster of 3 primaries with equal slot ranges gets each third of the users within ±10 %."""
    thirds = [0, 0, 0]
    for index in range(10_000):
        slot = key_slot(keys.user_key(keys.user_tag("https://idp.example.test", f"user-{index}")).encode())
        thirds[slot * 3 // 16384] += 1
    print(f"\nusers per primary (3 equal slot ranges): {thirds}")
    assert all(abs(count - 10_000 / 3) <= 10_000 / 3 * 0.10 for count in thirds), thirds
