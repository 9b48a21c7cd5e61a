"""The latest profile of each user, cached in Redis for sign-in.

Sign-in must not touch the database, yet a returning user should see the profile
they saved last time, not the provider's defaults. So every accepted profile edit
(in the web request) and every persisted user row (in the worker) is written
here, and sign-in reads it with one GET. A compare-and-set on the profile version
keeps an older write from replacing a newer one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis import Redis

PROFILE_FIELDS = ("display_name", "locale", "timezone", "website", "bio")

_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'data', ARGV[2])
return 1
"""


def snapshot_key(issuer: str, subject: str) -> str:
    """Redis key of one user's snapshot (hashed: ids may hold any characters)."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"profile:{digest}"


def save_snapshot(client: Redis, issuer: str, subject: str, profile: Mapping[str, Any]) -> bool:
    """Store `profile` unless a newer version is already there; True when stored."""
    data = json.dumps({field: profile.get(field) for field in PROFILE_FIELDS})
    stored = client.eval(_SET_IF_NEWER, 1, snapshot_key(issuer, subject), int(profile["version"]), data)
    return bool(stored)


def load_snapshot(client: Redis, issuer: str, subject: str) -> dict[str, Any] | None:
    """The newest saved profile of a user, with its version, or None."""
    version, data = client.hmget(snapshot_key(issuer, subject), "version", "data")
    if version is None or data is None:
        return None
    profile = json.loads(data)
    profile["version"] = int(version)
    return profile
