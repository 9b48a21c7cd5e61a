"""The one definition of a user's identity and profile: fields, limits and plain-data forms.

The profile form, the SQL model, the per-user state in Redis and the persistence
job all take their field names and limits from here.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec

DISPLAY_NAME_MAX = 80
LOCALE_MAX = 35
TIMEZONE_MAX = 64
WEBSITE_MAX = 255
BIO_MAX = 500
ISSUER_MAX = 255
SUBJECT_MAX = 255
EMAIL_MAX = 320
NAME_MAX = 255
PICTURE_MAX = 2048


# array_like: stored in Redis as a msgpack array of the fields in this order (see `encode` below).
class Identity(msgspec.Struct, kw_only=True, omit_defaults=True, array_like=True):
    """Who the provider says the user is (refreshed at every sign-in)."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None
    picture: str | None = None


class Profile(msgspec.Struct, kw_only=True, omit_defaults=True, array_like=True):
    """What the user chose on the profile page."""

    display_name: str
    locale: str = "en"
    timezone: str = "UTC"
    website: str | None = None
    bio: str | None = None


PROFILE_FIELDS: tuple[str, ...] = Profile.__struct_fields__
IDENTITY_CLAIMS: tuple[str, ...] = ("email", "name", "picture")
# A sign-in's persistence record also says whether the provider verified `email` (users.email_verified, which
# signin/email_linking.py asks). Only the database keeps it: the pages never need it, and Redis stays smaller.
EMAIL_VERIFIED = "email_verified"
# The longest value each stored text may have (the SQL columns are sized from these).
LIMITS = {
    "email": EMAIL_MAX,
    "name": NAME_MAX,
    "picture": PICTURE_MAX,
    "display_name": DISPLAY_NAME_MAX,
    "locale": LOCALE_MAX,
    "timezone": TIMEZONE_MAX,
    "website": WEBSITE_MAX,
    "bio": BIO_MAX,
}


def clean_text(value: Any, limit: int, *, keep_newlines: bool = False) -> str | None:
    """A provider's claim as Gatehouse keeps it: text without control characters, trimmed, at most `limit` long.

    Providers can send anything; one claim PostgreSQL cannot store (a NUL, a name
    longer than its column) would otherwise fail every persistence job of that user.
    """
    if not isinstance(value, str):
        return None
    text = value
    # Nearly every claim is printable, which rules out every control (category C) character at C speed.
    if not value.isprintable():
        allowed = {"\n"} if keep_newlines else set()
        text = "".join(char for char in value if char in allowed or unicodedata.category(char)[0] != "C")
    text = text.strip()[:limit].strip()
    return text or None


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    """A persistence record with every text field made storable (a second line of defence behind sign-in)."""
    cleaned = dict(record)
    for field, limit in LIMITS.items():
        if field in cleaned:
            cleaned[field] = clean_text(cleaned[field], limit, keep_newlines=field == "bio")
    if not cleaned.get("display_name"):
        cleaned["display_name"] = "New user"
    # Only a real `true` counts as verified (a provider's "true" string, or anything else, does not).
    cleaned[EMAIL_VERIFIED] = True if cleaned.get(EMAIL_VERIFIED) is True else None
    cleaned["locale"] = cleaned.get("locale") or "en"
    cleaned["timezone"] = cleaned.get("timezone") or "UTC"
    return cleaned


# How an identity and a profile are stored in Redis (the user's state). Compact: a msgpack array of the fields in
# the order they are declared above, trailing defaults left out; a field added later must go last (one a later
# version appended is passed over, so a process not yet upgraded still reads its records). It is about 25
# bytes shorter than a map by field name for an identity and 17 for a profile, which for most users puts their
# state in a smaller allocation (docs/performance.md). Whole (SESSION_LAYOUT=whole): the map, as Gatehouse wrote
# it before 2026-12, for the first step of a rolling upgrade. Both forms are always read.
_encoder = msgspec.msgpack.Encoder()
_MAP_MARKERS = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))  # msgpack fixmap, map 16, map 32


def _map_type(kind: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """`kind` as a msgpack map by field name (the form before 2026-12): the same fields, types and defaults."""
    fields = [
        (field.name, field.type) if field.required else (field.name, field.type, field.default)
        for field in msgspec.structs.fields(kind)
    ]
    return msgspec.defstruct(f"{kind.__name__}Map", fields, kw_only=True, omit_defaults=True)


_DECODERS: dict[type[msgspec.Struct], tuple[msgspec.msgpack.Decoder[Any], msgspec.msgpack.Decoder[Any]]] = {
    kind: (msgspec.msgpack.Decoder(kind), msgspec.msgpack.Decoder(_map_type(kind))) for kind in (Identity, Profile)
}


def encode(value: Identity | Profile, *, compact: bool = True) -> bytes:
    """The form stored in Redis: an array (`compact`), or a map by field name (SESSION_LAYOUT=whole)."""
    fields, values = msgspec.structs.fields(value), msgspec.structs.astuple(value)
    if not compact:
        named = zip(fields, values, strict=True)
        return _encoder.encode({field.name: item for field, item in named if item != field.default})
    row = list(values)
    while row and not fields[len(row) - 1].required and row[-1] == fields[len(row) - 1].default:
        row.pop()
    return _encoder.encode(row)


def _decode(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    """A `kind` from either stored form."""
    row_decoder, map_decoder = _DECODERS[kind]
    if raw[:1] and raw[0] in _MAP_MARKERS:
        return kind(**msgspec.structs.asdict(map_decoder.decode(raw)))
    return row_decoder.decode(raw)


def decode_identity(raw: bytes) -> Identity:
    """An Identity from either stored form."""
    identity: Identity = _decode(raw, Identity)
    return identity


def decode_profile(raw: bytes) -> Profile:
    """A Profile from either stored form."""
    profile: Profile = _decode(raw, Profile)
    return profile


def profile_dict(profile: Profile, version: int) -> dict[str, Any]:
    """The profile as plain data with its version (what hooks, templates and jobs see)."""
    return {**msgspec.structs.asdict(profile), "version": version}


def profile_from(data: dict[str, Any]) -> Profile:
    """A Profile from plain data (unknown keys such as "version" are ignored)."""
    return Profile(**{field: data[field] for field in PROFILE_FIELDS if field in data})


def identity_dict(identity: Identity) -> dict[str, Any]:
    """The identity as plain data, every field present."""
    return {field: getattr(identity, field) for field in Identity.__struct_fields__}
