"""Linking another provider's sign-in into the signed-in user's account, and unlinking it.

Linking takes a recent sign-in (the route is behind `recent_sign_in_required`), then a sign-in at
the other provider, and links only the identity authenticated there. An identity that belongs to
another account (it created one, or is linked into one) is refused, never moved: checked in the
database, where an account whose Redis state has expired still is, and in Redis, where a link or
a first sign-in made a moment ago already is (sessions/identity_links.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from accounts.identities import identity_owner, link_identity, unlink_identity
from jobs.queues import enqueue
from oidc.provider import Provider, oidc_providers
from sessions.identity_links import (
    AccountGone,
    IdentityTaken,
    Link,
    ProviderAlreadyLinked,
    account_links,
    add_link,
    new_link,
    remove_link,
)
from sessions.user import current_session
from signin.callback import LoginResult
from signin.failures import LoginFailed
from users.tags import user_tag

log = logging.getLogger(__name__)


def own_provider() -> Provider | None:
    """The provider of the signed-in account's own identity (the one that created it)."""
    identity = current_session().identity
    return oidc_providers().issuing(identity.issuer if identity else None)


def linked_providers() -> dict[str, Link | None]:
    """Provider name -> the account's identity there (None for its own identity), for the signed-in user."""
    stored = current_session()
    linked: dict[str, Link | None] = {link.provider: link for link in account_links(stored.user or "")}
    own = own_provider()
    if own is not None:
        linked[own.name] = None
    return linked


def confirm_link(result: LoginResult) -> bool:
    """Link the identity `result` authenticated into the signed-in account; False if it was linked already.

    Raises LoginFailed (link_signed_out, link_taken, link_provider_taken, link_unavailable); refused,
    nothing changes.
    """
    stored = current_session()
    asked = result.link or {}
    if not stored.signed_in or stored.user is None or stored.identity is None or stored.user != asked.get("user"):
        raise LoginFailed("link_signed_out", "the session ended or changed while linking")
    issuer, subject = result.claims["iss"], result.claims["sub"]
    if user_tag(issuer, subject) == stored.user:
        return False
    try:
        owner = identity_owner(issuer, subject)
    except SQLAlchemyError as error:
        # Not knowing whether the identity has an account of its own, nothing may be linked.
        raise LoginFailed("link_unavailable", "the database cannot say whose the identity is") from error
    account = (stored.identity.issuer, stored.identity.subject)
    if owner is not None and owner != account:
        raise LoginFailed("link_taken", "the identity belongs to another account")
    own = own_provider()
    link = new_link(result.provider, issuer, subject)
    try:
        added = add_link(stored.user, own.name if own else "", link)
    except IdentityTaken as error:
        raise LoginFailed("link_taken", "the identity belongs to another account") from error
    except ProviderAlreadyLinked as error:
        raise LoginFailed("link_provider_taken", "the account has an identity at that provider") from error
    except AccountGone as error:
        raise LoginFailed("link_signed_out", "the account was deleted while linking") from error
    if added:
        queue_link(account, link)
    return added


def unlink(link: Link) -> int | None:
    """Unlink one of the signed-in account's links (`linked_providers`); sessions it signed in end. None: not linked.

    The account's own identity (the one that created it) is not a link: unlinking it moves the account
    (accounts/moves.py). Raises LastSignIn for the last link of an account with no identity of its own.
    """
    stored = current_session()
    if stored.user is None or stored.identity is None:
        return None
    ended = remove_link(stored.user, link)
    if ended is not None:
        queue_unlink((stored.identity.issuer, stored.identity.subject), link)
    return ended


def queue_link(account: tuple[str, str], link: Link) -> None:
    """Queue the identity's row in the database (the worker's link_identity)."""
    enqueue(
        link_identity,
        {
            "user_issuer": account[0],
            "user_subject": account[1],
            "provider": link.provider,
            "issuer": link.issuer,
            "subject": link.subject,
            "linked_at": datetime.fromtimestamp(link.linked_at, UTC).isoformat(),
        },
    )


def queue_unlink(account: tuple[str, str], link: Link) -> None:
    """Queue the removal of the identity's row (the worker's unlink_identity)."""
    enqueue(
        unlink_identity,
        {
            "user_issuer": account[0],
            "user_subject": account[1],
            "issuer": link.issuer,
            "subject": link.subject,
            # Orders the unlink against link jobs of the same identity (accounts/identities.py).
            "unlinked_at": datetime.now(UTC).isoformat(),
        },
    )
