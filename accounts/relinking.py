"""After the session store lost its data: a linked identity that signed in as itself is folded back into its account.

The sign-in could not know of the link (Redis lost it, and a sign-in never asks the database), so it
opened an account of the identity's own in Redis. The worker never stores that one
(`accounts.identities.without_linked_identities`); here it ends that stray account's sessions and
puts the link back, with the account's state if Redis has none, so the identity's next sign-in
opens the account it belongs to. The person is signed out once. What they changed in the stray
account in the moment before (until its sign-in's job ran) was never theirs to keep: it is not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from accounts.identities import account_linked_into, provider_name
from extensions import db
from models.user import User
from sessions.identity_links import Link, restore_link
from sessions.user_state import delete_user_state
from users.schema import PROFILE_FIELDS, Identity, profile_from
from users.tags import is_moved_account, user_tag

log = logging.getLogger(__name__)


def fold_back(records: Sequence[Mapping[str, Any]]) -> int:
    """For each record of an identity linked into another account: end its stray account, restore the link.

    Returns how many were folded back. Runs after the batch's commit (it reads the database and writes Redis).
    """
    folded = 0
    for issuer, subject in sorted({(record["issuer"], record["subject"]) for record in records}):
        found = account_linked_into(issuer, subject)
        if found is None:
            continue
        account, identity_row = found
        stray = user_tag(issuer, subject)
        _, ended = delete_user_state(stray)
        linked_at = identity_row.linked_at
        linked_at = linked_at if linked_at.tzinfo else linked_at.replace(tzinfo=UTC)  # SQLite drops the zone
        link = Link(identity_row.provider, issuer, subject, linked_at.timestamp())
        outcome = restore_into(account, link)
        log.warning("folded user %s back into its account (%d stray session(s) ended, link %s)", stray, ended, outcome)
        folded += 1
    db.session.remove()
    return folded


def restore_into(account: User, link: Link) -> str:
    """Put `link` into the account's Redis state, which gets its identity and profile from the row if Redis has none.

    What link.lua answered ('linked', 'already', 'provider_taken' or 'gone').
    """
    return restore_link(
        user_tag(account.issuer, account.subject),
        "" if is_moved_account(account.issuer) else provider_name(account.issuer),  # "": no identity of its own
        link,
        _identity(account),
        profile_from({field: getattr(account, field) for field in PROFILE_FIELDS}),
        (account.identity_version, account.profile_version),
    )


def _identity(account: User) -> Identity:
    return Identity(
        issuer=account.issuer, subject=account.subject, email=account.email, name=account.name, picture=account.picture
    )
