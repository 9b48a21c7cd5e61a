"""The built-in session hooks: hand the user to the worker, never to the database."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

from jobs.queues import enqueue
from jobs.users import persist_user
from sessions.hooks import session_hooks
from sessions.profile_snapshot import PROFILE_FIELDS


def user_record(data: Mapping[str, Any], *, identity_version: int = 0) -> dict[str, Any]:
    """The plain data a persistence job needs, taken from a session."""
    user, profile = data["user"], data["profile"]
    return {
        "issuer": user["issuer"],
        "subject": user["subject"],
        "email": user.get("email"),
        "name": user.get("name"),
        "picture": user.get("picture"),
        "identity_version": identity_version,
        **{field: profile.get(field) for field in PROFILE_FIELDS},
        "profile_version": int(profile.get("version", 0)),
    }


def enqueue_user_persistence(data: dict[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
    """Sign-in hook: queue the upsert of this user (the sign-in time orders identity updates)."""
    enqueue(persist_user, user_record(data, identity_version=time.time_ns() // 1_000_000))
    return data


def register_builtin_hooks(app: Flask) -> None:
    """Pin the persistence hook to run after every hook the app adds."""
    session_hooks(app).before_session_saved(enqueue_user_persistence, last=True)
