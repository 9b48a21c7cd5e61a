"""The state every session of a user shares (sessions/keys.py `gh:{U}:u`), behind typed functions.

The accounts flows (profile edits, persistence, disable, deletion) change a user's shared state
only through these functions; the keys, hash fields and scripts stay inside this package. Each
function is one round trip, and each script touches one user's keys only (one Cluster slot).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from flask import current_app
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from connections import session_redis
from sessions import keys
from sessions.identity_links import account_links, forget_stale_link
from sessions.long_fields import join_pieces, piece_fields
from sessions.scripts import SessionScripts
from sessions.store import session_store
from users.schema import Identity, Profile, decode_identity, decode_profile


@dataclass(frozen=True)
class UserState:
    """What Redis holds for a user before they sign in: their shared profile and flags."""

    profile: Profile | None
    profile_version: int
    disabled: bool
    # The account's own identity (None: no state, or written before it was read here).
    identity: Identity | None = None


@dataclass(frozen=True)
class SavedProfile:
    """The shared profile, and whether the worker has confirmed it against the database (after a sign-in)."""

    profile: Profile
    version: int
    confirmed: bool


@dataclass(frozen=True)
class PersistedUser:
    """What the database now holds for a user, as the worker hands it back to their sessions."""

    user: str
    profile: Profile
    profile_version: int
    disabled: bool
    # The row's newest version (identity or profile): a row no newer than a deletion changes nothing.
    newest_version: int


def _scripts() -> SessionScripts:
    return session_store(current_app).scripts


def _ending_arguments(user: str) -> list[str]:
    """The key prefixes a script that ends sessions needs: the user's session records and their tokens."""
    return [keys.session_key(user, ""), keys.tokens_key(user, "")]


def read_user_state(user: str) -> UserState:
    """A user's shared state (one round trip)."""
    # redis-py types replies as bytes | str; this client does not decode responses, so they are bytes.
    # Identity and profile may be stored in pieces (sessions/long_fields.py): all of them in the one HMGET.
    profile_fields, identity_fields = piece_fields("p"), piece_fields("i")
    reply = cast(
        list[bytes | None],
        session_redis().hmget(keys.user_key(user), "pv", "off", *profile_fields, *identity_fields),
    )
    version, disabled = reply[:2]
    raw_profile = join_pieces(reply[2 : 2 + len(profile_fields)])
    raw_identity = join_pieces(reply[2 + len(profile_fields) :])
    return UserState(
        profile=decode_profile(raw_profile) if raw_profile else None,
        profile_version=int(version or 0),
        disabled=disabled == b"1",
        identity=decode_identity(raw_identity) if raw_identity else None,
    )


def read_saved_profile(user: str) -> SavedProfile | None:
    """The user's shared profile with its version and confirmation (None: the user's state is gone)."""
    reply = cast(list[bytes | None], session_redis().hmget(keys.user_key(user), "ok", "pv", *piece_fields("p")))
    confirmed, version = reply[:2]
    raw_profile = join_pieces(reply[2:])
    if raw_profile is None:
        return None
    if confirmed == b"1" and version is None:  # written with the profile; int(None) would raise this
        raise TypeError("the user's profile has no version")
    return SavedProfile(decode_profile(raw_profile), int(version or 0), confirmed == b"1")


class ProfileMovedOn(Exception):
    """The profile changed since the edit's form was shown, or another edit of that version is being saved."""


# How long an edit's reservation keeps another edit of the same shown version out: far longer than a save
# takes from reserving to committing, short enough that a save that died half-way blocks no one for long.
RESERVATION_HOLD_MS = 10_000


def reserve_profile_version(user: str, shown_version: int | None = None) -> int | None:
    """A version for a profile edit, newer than every stored or reserved one (None: the user's state is gone).

    With `shown_version` (the version the edit's form showed), raises ProfileMovedOn unless that is still
    the saved version and no other edit of it is under way: checked atomically with the reservation.
    """
    shown = "" if shown_version is None else str(shown_version)
    version = _scripts().profile_reserve(keys=[keys.user_key(user)], args=[shown, RESERVATION_HOLD_MS])
    if version is None:
        return None
    if version == b"changed":
        raise ProfileMovedOn(user)
    return int(version)


def commit_profile(user: str, version: int, profile: Profile) -> bool:
    """Store the profile at its reserved version; False if a newer one is there or the state is gone."""
    scripts = _scripts()
    packed = scripts.pack(profile)
    stored = scripts.replicated(scripts.profile_commit, keys=[keys.user_key(user)], args=[version, packed])
    return int(stored) == 1


def set_disabled(user: str, disabled: bool) -> tuple[int, int]:
    """Disable (every session ends now) or enable a user; returns (the change's version, sessions ended)."""
    scripts = _scripts()
    version, ended = scripts.replicated(
        scripts.set_disabled,
        keys=[keys.user_key(user), keys.index_key(user)],
        args=["1" if disabled else "0", current_app.config["USER_STATE_TTL"], *_ending_arguments(user), time.time()],
    )
    return int(version), int(ended)


def delete_user_state(user: str) -> tuple[int, int]:
    """End every session and drop the shared state, leaving a tombstone; returns (deletion version, sessions ended).

    The version is above every version the user's data had, so no late job can bring them back.
    """
    scripts = _scripts()
    links = account_links(user)
    version, ended = scripts.replicated(
        scripts.delete_user,
        keys=[keys.user_key(user), keys.index_key(user)],
        args=[*_ending_arguments(user), current_app.config["USER_STATE_TTL"]],
    )
    # The identities linked into it lead nowhere now (sign_in.lua would find no link field either).
    for link in links:
        forget_stale_link(link.issuer, link.subject, user)
    return int(version), int(ended)


def publish_persisted(users: Sequence[PersistedUser]) -> None:
    """Give every session of each user what the database now holds (persisted.lua), in one round trip."""
    if len(users) == 1:
        _publish(users[0], client=None)
        return
    for attempt in (1, 2):
        with session_redis().pipeline(transaction=False) as pipe:
            for row in users:
                _publish(row, client=pipe)
            try:
                pipe.execute()
                return
            except NoScriptError:
                # A Cluster pipeline does not load its scripts first, and a node promoted since has none:
                # load it everywhere and publish again (persisted.lua is safe to repeat).
                if attempt == 2:
                    raise
                script = _scripts().persisted
                script.sha = session_redis().script_load(script.script)


def _publish(row: PersistedUser, *, client: Pipeline | None) -> None:
    scripts = _scripts()
    scripts.persisted(
        keys=[keys.user_key(row.user), keys.index_key(row.user)],
        args=[
            scripts.pack(row.profile),
            row.profile_version,
            "1" if row.disabled else "0",
            current_app.config["USER_STATE_TTL"],
            *_ending_arguments(row.user),
            time.time(),
            row.newest_version,
        ],
        client=client,
    )
