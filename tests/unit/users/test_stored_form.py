"""users/schema.py's stored form of an identity and a profile: compact arrays, the maps of before, and bad input."""

from __future__ import annotations

import msgspec
import pytest

from tests.support.records_before import IdentityBefore, ProfileBefore
from users.schema import Identity, Profile, decode_identity, decode_profile, encode

IDENTITIES = [
    Identity(issuer="https://idp.example.test", subject="alice"),
    Identity(issuer="https://idp.example.test", subject="alice", name="Alice"),  # a None before a value
    Identity(issuer="i", subject="s", email="a@example.test", name="A", picture="https://pics.example.test/a.png"),
]
PROFILES = [
    Profile(display_name="Alice"),
    Profile(display_name="Alice", locale="fr", timezone="Europe/Paris"),
    Profile(display_name="Alice", locale="en", timezone="UTC", website=None, bio="A bio"),  # defaults, then a value
    Profile(display_name="Alice", website="https://alice.example.test", bio=""),
]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_an_identity_reads_back_from_either_form_and_the_compact_one_is_shorter(identity: Identity) -> None:
    compact, whole = encode(identity), encode(identity, compact=False)
    assert decode_identity(compact) == identity == decode_identity(whole)
    assert len(compact) < len(whole)
    before = msgspec.msgpack.decode(whole, type=IdentityBefore)  # what a process not yet upgraded decodes
    assert msgspec.structs.asdict(before) == msgspec.structs.asdict(identity)
    assert whole == msgspec.msgpack.encode(before)  # byte for byte what it wrote itself


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_reads_back_from_either_form_and_the_compact_one_is_shorter(profile: Profile) -> None:
    compact, whole = encode(profile), encode(profile, compact=False)
    assert decode_profile(compact) == profile == decode_profile(whole)
    assert len(compact) < len(whole)
    before = msgspec.msgpack.decode(whole, type=ProfileBefore)
    assert msgspec.structs.asdict(before) == msgspec.structs.asdict(profile)
    assert whole == msgspec.msgpack.encode(before)


def test_trailing_defaults_are_left_out_and_come_back() -> None:
    assert msgspec.msgpack.decode(encode(Profile(display_name="A"))) == ["A"]
    assert msgspec.msgpack.decode(encode(Identity(issuer="i", subject="s"))) == ["i", "s"]
    assert decode_profile(msgspec.msgpack.encode(["A"])) == Profile(display_name="A", locale="en", timezone="UTC")


def test_a_field_a_later_version_appends_is_passed_over() -> None:
    """Fields are only ever added at the end, so a process not yet upgraded reads a newer record."""
    stored = msgspec.msgpack.encode(["i", "s", "a@example.test", None, None, "a field from a later version"])
    assert decode_identity(stored) == Identity(issuer="i", subject="s", email="a@example.test")


@pytest.mark.parametrize(
    "stored",
    [
        b"",
        msgspec.msgpack.encode([]),  # no issuer or subject
        msgspec.msgpack.encode(["i", 7]),  # a subject that is not text
        msgspec.msgpack.encode({"issuer": "i"}),  # the old form, missing the subject
        b"\x95\xa1i",  # cut short
    ],
)
def test_a_damaged_stored_identity_is_refused_not_guessed(stored: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_identity(stored)


@pytest.mark.parametrize(
    "stored", [msgspec.msgpack.encode([]), msgspec.msgpack.encode(["A", "en", 3]), msgspec.msgpack.encode("A")]
)
def test_a_damaged_stored_profile_is_refused_not_guessed(stored: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_profile(stored)
