"""Handing users to the worker: the plain record a persistence job carries, and the sign-in hook.

Every job carries the user's whole record (identity and profile, each with the
version Redis gave it), so whichever job runs last, the row ends at the newest
of each, and a lost job is made good by the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs.queues import enqueue
from jobs.users import persist_user
from sessions.user import current_session
from users.schema import IDENTITY_CLAIMS, PROFILE_FIELDS, identity_dict, profile_dict


def user_record(
    identity: Mapping[str, Any], profile: Mapping[str, Any], *, identity_version: int, profile_version: int
) -> dict[str, Any]:
    """The plain data a persistence job needs."""
    return {
        "issuer": identity["issuer"],
        "subject": identity["subject"],
        **{claim: identity.get(claim) for claim in IDENTITY_CLAIMS},
        "identity_version": identity_version,
        **{field: profile.get(field) for field in PROFILE_FIELDS},
        "profile_version": profile_version,
    }


def enqueue_persistence(record: Mapping[str, Any]) -> None:
    """Queue the upsert of one user (kept in the SQL outbox if the queue is down)."""
    enqueue(persist_user, dict(record))


def persist_signed_in_user() -> None:
    """After sign-in: queue the upsert of the user as the new session now shows them."""
    stored = current_session()
    if stored.identity is None or stored.profile is None:
        raise RuntimeError("no signed-in session to persist")
    enqueue_persistence(
        user_record(
            identity_dict(stored.identity),
            profile_dict(stored.profile, stored.profile_version),
            identity_version=stored.identity_version,
            profile_version=stored.profile_version,
        )
    )
