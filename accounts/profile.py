"""Profile edits: the user's shared profile changes through the refresh hook, the database through the queue."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import current_app, session

from accounts.persistence import enqueue_persistence, user_record
from sessions.hooks import propose_refresh
from sessions.user import current_profile, current_session
from sessions.user_state import ProfileMovedOn, commit_profile, read_saved_profile, reserve_profile_version
from users.schema import PROFILE_FIELDS, profile_from


class ProfileUnavailable(Exception):
    """The user's shared state has gone (signed out everywhere meanwhile): nothing was changed."""


class ProfileChangedElsewhere(Exception):
    """The profile changed since the form was shown (loaded from the database, or edited on another device)."""


# How often a request waiting for the worker to load the user's saved profile looks again.
LOAD_POLL_SECONDS = 0.05


def wait_until_loaded() -> bool:
    """Let this request see the user's saved profile, waiting (PROFILE_LOAD_WAIT at most) for the worker.

    A user's shared state is confirmed once the worker has compared it with their
    row (after each sign-in). Until then it may hold the provider's defaults instead
    of what they saved, if Redis lost its data. Returns False when the wait runs
    out (the worker or the database is down); raises ProfileUnavailable when the
    state is gone.
    """
    stored = current_session()
    if stored.confirmed:
        return True
    if stored.user is None:
        raise ProfileUnavailable("not signed in")
    deadline = time.monotonic() + float(current_app.config["PROFILE_LOAD_WAIT"])
    while True:
        saved = read_saved_profile(stored.user)
        if saved is None:
            raise ProfileUnavailable(stored.user)
        if saved.confirmed:
            stored.profile, stored.profile_version, stored.confirmed = saved.profile, saved.version, True
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(LOAD_POLL_SECONDS)


def refresh_saved_profile() -> None:
    """Show this request the profile saved now (after a refused save, the form shows what is kept)."""
    stored = current_session()
    saved = read_saved_profile(stored.user) if stored.user else None
    if saved is not None:
        stored.profile, stored.profile_version = saved.profile, saved.version


def save_profile(fields: Mapping[str, Any], *, shown_version: int | None = None) -> dict[str, Any]:
    """Apply a validated edit to every session of the user; raises SessionChangeRefused if a hook vetoes it.

    `shown_version` is the profile version the form was rendered from; if the saved
    profile has moved on since, or another device is saving an edit of that same version
    at this instant, nothing is saved (ProfileChangedElsewhere): checked in Redis atomically
    with the version's reservation, so two saves can never both be told "saved" while one
    edit is lost. An edit whose commit is refused (the account was deleted meanwhile, or a
    newer edit won) is not reported saved either.

    If the saved profile cannot be loaded in time, the edit is kept and only its changed
    fields reach the row (they cannot overwrite saved fields the user left alone). The
    version comes from Redis and is reserved before the job is queued, and the job is
    queued before the shared profile changes: an accepted edit reaches the database even
    if this request dies half-way, and an older edit never replaces a newer one, whatever
    the web hosts' clocks say.
    """
    stored = current_session()
    if stored.user is None:
        raise ProfileUnavailable("not signed in")
    loaded = wait_until_loaded()
    proposed = propose_refresh("update", {"profile": {**current_profile(), **fields}})
    try:
        # The form showed older values than the user's saved ones (or another device is saving the same
        # ones this instant): saving it would overwrite fields the user never touched, or lose one edit.
        version = reserve_profile_version(stored.user, shown_version)
    except ProfileMovedOn as moved:
        refresh_saved_profile()
        raise ProfileChangedElsewhere(stored.user) from moved
    if version is None:
        raise ProfileUnavailable(stored.user)
    profile = {**proposed["profile"], "version": version}
    record = user_record(proposed["user"], profile, identity_version=0, profile_version=version)
    if not loaded:
        # The saved profile is not known here (the database or the worker is away): the row must
        # keep every field this edit did not change, so the job carries only the changed ones.
        shown = current_profile()
        record["only"] = [field for field in PROFILE_FIELDS if profile.get(field) != shown.get(field)]
    # identity_version 0: an edit never changes the identity claims of an existing row.
    enqueue_persistence(record)
    if not commit_profile(stored.user, version, profile_from(profile)):
        # Deleted meanwhile (the queued job is older than the deletion, so it writes nothing back), or a newer
        # edit is saved already: this one is not kept, so it is not reported saved.
        if read_saved_profile(stored.user) is None:
            raise ProfileUnavailable(stored.user)
        refresh_saved_profile()
        raise ProfileChangedElsewhere(stored.user)
    # Keys a hook derived besides the profile belong to this session.
    for key, value in proposed.items():
        if key not in ("created_at", "user", "profile") and session.get(key) != value:
            session[key] = value
    stored.profile, stored.profile_version = profile_from(profile), version
    return profile
