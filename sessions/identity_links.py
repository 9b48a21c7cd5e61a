"""Identities linked into an account, in Redis: which account a sign-in belongs to, and each account's links.

An account's opaque id (its hash tag) comes from the identity that created it (users/tags.py),
so finding it needs no lookup. An identity linked into an account later has a link
(`gh:i:<digest>` -> the account) and a field in the account's state ("l:<digest>"), which
sign_in.lua checks, so a link whose account was deleted, or which was unlinked, leads nowhere.

A link and a first sign-in of the same identity can race (the identity creating an account of its
own while it is being linked elsewhere). Each side writes first and then reads what the other
writes (the link, then the other account's state; the session, then the link), so at least one
of them sees the other and backs off: an identity never ends up in two accounts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from flask import current_app

from connections import session_redis
from sessions import keys
from sessions.store import session_store
from users.schema import Identity, Profile
from users.tags import user_tag


@dataclass(frozen=True)
class Link:
    """One identity linked into an account: at which provider, who, and since when."""

    provider: str
    issuer: str
    subject: str
    linked_at: float


class IdentityTaken(Exception):
    """The identity belongs to another account: it is never moved."""


class ProviderAlreadyLinked(Exception):
    """The account already has an identity at that provider."""


class AccountGone(Exception):
    """The account was deleted (or its state lost) meanwhile."""


class LastSignIn(Exception):
    """The account has no identity of its own, and this is its last link: someone must be able to sign in to it."""


_link_encoder = msgspec.msgpack.Encoder()
_link_decoder = msgspec.msgpack.Decoder(tuple[str, str, str, float])


def _run_link_script(account: str, *args: Any) -> Any:
    """sessions/lua/link.lua on the account's state and index (a write: acknowledged once replicated)."""
    store = session_store(current_app)
    return store.scripts.replicated(
        store.scripts.link, keys=[keys.user_key(account), keys.index_key(account)], args=args
    )


def _record(link: Link) -> bytes:
    """A link as its field in the account's state holds it."""
    return _link_encoder.encode((link.provider, link.issuer, link.subject, link.linked_at))


def account_of(issuer: str, subject: str) -> tuple[str, str]:
    """(the account's id, the link field to check) for a sign-in; the field is '' for the account's own identity."""
    linked = cast(bytes | None, session_redis().get(keys.identity_link_key(issuer, subject)))
    if linked is None:
        return user_tag(issuer, subject), ""
    return linked.decode(), keys.link_field(issuer, subject)


def linked_elsewhere(issuer: str, subject: str) -> bool:
    """True if the identity is now linked into an account that is not its own (read after a first sign-in)."""
    linked = cast(bytes | None, session_redis().get(keys.identity_link_key(issuer, subject)))
    return linked is not None and linked.decode() != user_tag(issuer, subject)


def forget_stale_link(issuer: str, subject: str, account: str) -> None:
    """Drop a link that leads to an account no longer listing it (unlinked, or deleted)."""
    scripts = session_store(current_app).scripts
    scripts.replicated(scripts.compare_delete, keys=[keys.identity_link_key(issuer, subject)], args=[account])


def add_link(account: str, own_provider: str, link: Link) -> bool:
    """Link an identity into `account`; False if it was linked there already.

    Raises IdentityTaken (it belongs to another account, or has one of its own), ProviderAlreadyLinked
    and AccountGone; on any of them nothing is left changed.
    """
    redis = session_redis()
    if user_tag(link.issuer, link.subject) == account:
        return False
    key = keys.identity_link_key(link.issuer, link.subject)
    if not redis.set(key, account, nx=True):
        if cast(bytes | None, redis.get(key)) == account.encode():
            return False
        raise IdentityTaken(account)
    # Written first, read second: a first sign-in of this identity writes its own account's state first and
    # reads the link second (signin/session.py), so one of the two sees the other.
    if redis.exists(keys.user_key(user_tag(link.issuer, link.subject))):
        forget_stale_link(link.issuer, link.subject, account)
        raise IdentityTaken(account)
    digest = keys.identity_digest(link.issuer, link.subject)
    outcome = _run_link_script(account, "add", digest, link.provider, _record(link), own_provider)
    if outcome != b"linked":
        forget_stale_link(link.issuer, link.subject, account)
        if outcome == b"gone":
            raise AccountGone(account)
        if outcome == b"provider_taken":
            raise ProviderAlreadyLinked(account)
    return bool(outcome == b"linked")


def remove_link(account: str, link: Link) -> int | None:
    """Unlink an identity from `account` and end the sessions it signed in; how many ended (None: not linked).

    Raises LastSignIn (nothing changed) for the last link of an account with no identity of its own.
    """
    outcome, ended = _run_link_script(
        account,
        "remove",
        keys.identity_digest(link.issuer, link.subject),
        link.provider,
        keys.session_key(account, ""),
        keys.tokens_key(account, ""),
        current_app.config["USER_STATE_TTL"],
    )
    if outcome == b"last":
        raise LastSignIn(account)
    if outcome != b"unlinked":
        return None
    forget_stale_link(link.issuer, link.subject, account)
    return int(ended)


def decode_link(record: bytes) -> Link:
    """A link from its field in the account's state."""
    return Link(*_link_decoder.decode(record))


def account_links(account: str) -> list[Link]:
    """The identities linked into `account` (not its own), oldest first."""
    fields = cast(dict[bytes, bytes], session_redis().hgetall(keys.user_key(account)))
    links = [decode_link(value) for name, value in fields.items() if name.startswith(b"l:")]
    return sorted(links, key=lambda link: link.linked_at)


def new_link(provider: str, issuer: str, subject: str) -> Link:
    """A link made now."""
    return Link(provider=provider, issuer=issuer, subject=subject, linked_at=time.time())


def restore_link(
    account: str,
    own_provider: str,
    link: Link,
    identity: Identity,
    profile: Profile,
    versions: tuple[int, int],
    *,
    replacing_tombstone: int | None = None,
) -> str:
    """Put back a link the store lost, from the database (the worker); what link.lua answered.

    The link leads to `account` again (the database is the truth), and an account with no state at all
    gets its identity and profile back (`versions`: identity and profile version of the row), so the
    identity's next sign-in opens it. `own_provider` '' is an account with no identity of its own (one
    that moved to a new name: accounts/moves.py), whose last link cannot be removed. With
    `replacing_tombstone`, the account's tombstone of that version gives way (a move undone).
    """
    session_redis().set(keys.identity_link_key(link.issuer, link.subject), account)
    scripts = session_store(current_app).scripts
    outcome = _run_link_script(
        account,
        "restore",
        keys.identity_digest(link.issuer, link.subject),
        link.provider,
        _record(link),
        own_provider,
        scripts.pack(identity),
        versions[0],
        scripts.pack(profile),
        versions[1],
        "" if own_provider else "1",
        "" if replacing_tombstone is None else replacing_tombstone,
    )
    return bytes(outcome).decode()
