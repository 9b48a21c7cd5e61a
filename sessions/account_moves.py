"""An account moving to a new name in Redis, when the identity that created it is unlinked (accounts/moves.py).

The account's keys are named by its creating identity (users/tags.py), so that identity cannot simply
stop being one of its sign-ins: its next sign-in would open the same keys. Instead the account moves:
`move_out` takes what its state holds and leaves the deletion's tombstone in one script (every session
ends; refused unless a linked identity remains), and `open_moved` opens the same state under the new
name, every link pointing there. `put_back` undoes a move whose job could not be kept anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from sessions import keys
from sessions.identity_links import AccountGone, Link, decode_link, restore_link
from sessions.store import session_store
from users.schema import Identity, Profile, decode_identity, decode_profile


class NoLinkLeft(Exception):
    """The account lists no linked identity: moving it would leave nothing to sign in with. Nothing changed."""


@dataclass(frozen=True)
class MovedOut:
    """What an account's state held when it moved out, and the tombstone left in its place."""

    version: int  # the tombstone's: above every version of the account's data (delete_user.lua)
    ended: int  # sessions ended
    identity: Identity
    identity_version: int
    profile: Profile
    profile_version: int
    links: tuple[Link, ...]


def move_out(account: str) -> MovedOut:
    """End every session of `account` and tombstone it, returning what it held; one script, one round trip.

    Raises NoLinkLeft and AccountGone, with nothing changed.
    """
    store = session_store(current_app)
    reply = cast(
        list[bytes | int],
        store.scripts.replicated(
            store.scripts.delete_user,
            keys=[keys.user_key(account), keys.index_key(account)],
            args=[
                keys.session_key(account, ""),
                keys.tokens_key(account, ""),
                current_app.config["USER_STATE_TTL"],
                "move",
            ],
        ),
    )
    if reply[0] == b"last":
        raise NoLinkLeft(account)
    if reply[0] == b"gone":
        raise AccountGone(account)
    version, ended, identity, identity_version, profile, profile_version, *records = reply
    return MovedOut(
        version=int(version),
        ended=int(ended),
        identity=decode_identity(cast(bytes, identity)),
        identity_version=int(identity_version),
        profile=decode_profile(cast(bytes, profile)),
        profile_version=int(profile_version),
        links=tuple(decode_link(cast(bytes, record)) for record in records),
    )


def open_moved(account: str, identity: Identity, moved: MovedOut) -> None:
    """Open the moved account's state under its new name `account` (its `identity`), each link leading there.

    An account opened this way has no identity of its own: its last link cannot be unlinked (link.lua).
    """
    for link in moved.links:
        restore_link(account, "", link, identity, moved.profile, (moved.identity_version, moved.profile_version))


def put_back(account: str, own_provider: str, moved: MovedOut) -> None:
    """Undo `move_out`: the account's state again, in place of its tombstone (its sessions stay ended)."""
    versions = (moved.identity_version, moved.profile_version)
    for link in moved.links:
        restore_link(
            account, own_provider, link, moved.identity, moved.profile, versions, replacing_tombstone=moved.version
        )
