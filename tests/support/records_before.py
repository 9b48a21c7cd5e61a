"""The identity and profile as Gatehouse read them from Redis before 2026-12: msgpack maps by field name.

What a process not yet upgraded decodes, so tests can check that SESSION_LAYOUT=whole writes what it reads.
"""

from __future__ import annotations

import msgspec


class IdentityBefore(msgspec.Struct, kw_only=True, omit_defaults=True):
    """users/schema.py's Identity before 2026-12."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None
    picture: str | None = None


class ProfileBefore(msgspec.Struct, kw_only=True, omit_defaults=True):
    """users/schema.py's Profile before 2026-12."""

    display_name: str
    locale: str = "en"
    timezone: str = "UTC"
    website: str | None = None
    bio: str | None = None
