"""Profile edits: the session changes through the refresh hook, the database through the queue."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from connections import session_redis
from jobs.queues import enqueue
from jobs.users import persist_user
from sessions.hooks import apply_refresh, propose_refresh
from sessions.persistence import user_record
from sessions.profile_snapshot import save_snapshot
from sessions.user import current_profile, current_user


def next_profile_version() -> int:
    """A version newer than the current one: the edit time in ms, never going backwards."""
    return max(time.time_ns() // 1_000_000, int(current_profile().get("version", 0)) + 1)


def save_profile(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a validated edit; raises SessionChangeRefused if a refresh hook vetoes it.

    The job is queued before the session is written, so an accepted edit reaches
    the database even if this request dies before its session is saved.
    """
    profile = {**current_profile(), **fields, "version": next_profile_version()}
    new_session = propose_refresh("update", {"profile": profile})
    enqueue(persist_user, user_record(new_session))
    user = current_user()
    save_snapshot(session_redis(), user["issuer"], user["subject"], new_session["profile"])
    apply_refresh(new_session)
    return new_session["profile"]
