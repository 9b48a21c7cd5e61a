"""The Lua scripts behind sessions (sessions/lua/*.lua), registered on one Redis client.

Each script touches only keys of one user's hash tag, so it runs atomically on one
Redis (or one Cluster slot) and costs one round trip.
"""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).resolve().parent / "lua"
NAMES = (
    "read",
    "create",
    "write",
    "sign_in",
    "end_sessions",
    "list",
    "profile_reserve",
    "profile_commit",
    "persisted",
    "set_disabled",
    "tokens_commit",
    "delete_user",
    "set_auth_time",
)


class SessionScripts:
    """One registered script per file in sessions/lua, as attributes (`scripts.read(keys=…, args=…)`)."""

    read: Script
    create: Script
    write: Script
    sign_in: Script
    end_sessions: Script
    list: Script
    profile_reserve: Script
    profile_commit: Script
    persisted: Script
    set_disabled: Script
    tokens_commit: Script
    delete_user: Script
    set_auth_time: Script

    def __init__(self, client: Redis):
        for name in NAMES:
            setattr(self, name, client.register_script((LUA_DIR / f"{name}.lua").read_text()))
