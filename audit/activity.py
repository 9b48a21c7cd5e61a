"""A user's own recent security events, as the devices page shows them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from audit.store import events
from extensions import db
from models.audit import AuditEvent
from models.deleted_user import DeletedUser
from sessions.devices import describe_device

log = logging.getLogger(__name__)

RECENT_ACTIVITY = 10

# (kind, outcome) -> what the user reads; an event missing here is not shown to the user.
_DESCRIPTIONS = {
    ("sign_in", "success"): "Signed in",
    ("identity_linked", "success"): "Linked a sign-in",
    ("identity_linked", "email"): "A sign-in with the same verified e-mail address was linked",
    ("identity_unlinked", "user"): "Unlinked a sign-in",
    ("sign_out", "user"): "Signed out",
    ("sign_out", "app"): "Signed out by the application",
    ("reauthenticated", "success"): "Confirmed the sign-in for a sensitive action",
    ("profile_changed", "saved"): "Changed the profile",
    ("session_revoked", "user"): "Signed out another device",
    ("session_revoked", "user_others"): "Signed out all other devices",
    ("session_revoked", "backchannel"): "Signed out by the identity provider",
    ("account_disabled", "operator"): "Account disabled by an administrator",
    ("account_enabled", "operator"): "Account enabled by an administrator",
    ("token_refused", "signed_out"): "Signed out: the service stopped accepting the sign-in",
}


@dataclass(frozen=True)
class Activity:
    """One line of the user's recent activity."""

    at: float  # Unix time, for the page's time filters
    description: str
    device: str | None
    address: str | None


def _describe(event: AuditEvent) -> Activity | None:
    description = _DESCRIPTIONS.get((event.kind, event.outcome or ""))
    if description is None:
        return None
    if event.repeats > 1:  # identical events of one minute are one row (audit/store.py)
        description = f"{description} ({event.repeats} times)"
    moment = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    return Activity(
        at=moment.timestamp(),
        description=description,
        device=describe_device(event.user_agent) if event.user_agent else None,
        address=event.client_address,
    )


def recent_activity(issuer: str, subject: str) -> list[Activity] | None:
    """The user's latest events, newest first; None when the database cannot be read (the page still works).

    A deleted account's events stay in the audit trail for operators, but a later sign-in makes a new
    account, which is shown only what happened after the deletion.
    """
    try:
        account_began = db.session.execute(
            select(DeletedUser.deleted_at).where(DeletedUser.issuer == issuer, DeletedUser.subject == subject)
        ).scalar()
        listed = events(issuer=issuer, subject=subject, after=account_began, limit=RECENT_ACTIVITY)
        found = [_describe(event) for event in listed]
    except SQLAlchemyError as error:
        log.warning("recent activity unavailable: %s", type(error).__name__)
        return None
    finally:
        db.session.remove()
    return [activity for activity in found if activity is not None]
