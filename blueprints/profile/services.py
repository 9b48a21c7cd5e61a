"""Profile edits: the user's shared profile changes through the refresh hook, the database through the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, session

from sessions import keys
from sessions.hooks import propose_refresh
from sessions.store import session_store
from sessions.user import current_profile, current_session
from users.persistence import enqueue_persistence, user_record
from users.schema import encode, profile_from


class ProfileUnavailable(Exception):
    """The user's shared state has gone (signed out everywhere meanwhile): nothing was changed."""


def save_profile(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a validated edit to every session of the user; raises SessionChangeRefused if a hook vetoes it.

    The version comes from Redis and is reserved before the job is queued, and the
    job is queued before the shared profile changes: an accepted edit reaches the
    database even if this request dies half-way, and an older edit never replaces
    a newer one, whatever the web hosts' clocks say.
    """
    stored = current_session()
    if stored.user is None:
        raise ProfileUnavailable("not signed in")
    store = session_store(current_app)
    user_key = keys.user_key(stored.user)
    proposed = propose_refresh("update", {"profile": {**current_profile(), **fields}})
    version = store.scripts.profile_reserve(keys=[user_key])
    if version is None:
        raise ProfileUnavailable(stored.user)
    version = int(version)
    profile = {**proposed["profile"], "version": version}
    # identity_version 0: an edit never changes the identity claims of an existing row.
    enqueue_persistence(user_record(proposed["user"], profile, identity_version=0, profile_version=version))
    store.scripts.profile_commit(keys=[user_key], args=[version, encode(profile_from(profile))])
    # Keys a hook derived besides the profile belong to this session.
    for key, value in proposed.items():
        if key not in ("created_at", "user", "profile") and session.get(key) != value:
            session[key] = value
    stored.profile, stored.profile_version = profile_from(profile), version
    return profile
