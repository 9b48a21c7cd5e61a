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


class Identity(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Who the provider says the user is (refreshed at every sign-in)."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None
    picture: str | None = None


class Profile(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the user chose on the profile page."""

    display_name: str
    locale: str = "en"
    timezone: str = "UTC"
    website: str | None = None
    bio: str | None = None


PROFILE_FIELDS: tuple[str, ...] = Profile.__struct_fields__
IDENTITY_CLAIMS: tuple[str, ...] = ("email", "name", "picture")
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
    cleaned["locale"] = cleaned.get("locale") or "en"
    cleaned["timezone"] = cleaned.get("timezone") or "UTC"
    return cleaned


_encoder = msgspec.msgpack.Encoder()
_identity_decoder = msgspec.msgpack.Decoder(Identity)
_profile_decoder = msgspec.msgpack.Decoder(Profile)


def encode(value: Identity | Profile) -> bytes:
    """The compact form stored in Redis."""
    return _encoder.encode(value)


def decode_identity(raw: bytes) -> Identity:
    """An Identity from its stored form."""
    return _identity_decoder.decode(raw)


def decode_profile(raw: bytes) -> Profile:
    """A Profile from its stored form."""
    return _profile_decoder.decode(raw)


def profile_dict(profile: Profile, version: int) -> dict[str, Any]:
    """The profile as plain data with its version (what hooks, templates and jobs see)."""
    return {**msgspec.structs.asdict(profile), "version": version}


def profile_from(data: dict[str, Any]) -> Profile:
    """A Profile from plain data (unknown keys such as "version" are ignored)."""
    return Profile(**{field: data[field] for field in PROFILE_FIELDS if field in data})


def identity_dict(identity: Identity) -> dict[str, Any]:
    """The identity as plain data, every field present."""
    return {field: getattr(identity, field) for field in Identity.__struct_fields__}
