"""Recording a security event: built in the request, stored by a job, never in the request's way.

`record` puts the event on the queue (or, when the queue refuses it, in the SQL outbox, like
every job). Neither a slow worker nor a database outage slows the request; if the queue and
the database are both unreachable the event cannot be kept anywhere, and that is logged (with
the event's kind only) instead of failing the request it describes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from audit.jobs import store_audit_event
from jobs.queues import enqueue
from logs import current_request_id
from models import audit as limits
from sessions.user import current_session
from users.schema import clean_text

log = logging.getLogger(__name__)

# Every kind of event, with the outcomes it may carry (None: any short word the code chooses).
KINDS: Mapping[str, frozenset[str] | None] = {
    "sign_in": None,  # "success", or the failure kind shown to the user (signin/failures.py)
    # "user": POST /logout; "app": the app's own code called flask_login.logout_user() (signin/signout.py).
    "sign_out": frozenset({"user", "app"}),
    # A signed-in user confirmed it is them at the provider (signin/reauth.py): "success", or the refusal's kind.
    "reauthenticated": frozenset({"success", "reauth_stale", "reauth_other_user", "reauth_signed_out"}),
    # Another provider's sign-in linked into the account, or refused (signin/linking.py); detail: the provider.
    # "email": a first sign-in joined the account by its verified address (OIDC_<NAME>_TRUST_EMAIL,
    # signin/email_linking.py).
    "identity_linked": frozenset(
        {
            "success",
            "email",
            "link_taken",
            "link_provider_taken",
            "link_signed_out",
            "link_unavailable",
            "failed",
            "expired",
        }
    ),
    "identity_unlinked": frozenset({"user"}),
    "profile_changed": frozenset({"saved"}),
    # An operator's `users disable` is the account_disabled event (it ends every session of the user).
    "session_revoked": frozenset({"user", "user_others", "backchannel"}),
    "account_disabled": frozenset({"operator"}),
    "account_enabled": frozenset({"operator"}),
    "account_deleted": frozenset({"user"}),
    "token_refused": frozenset({"signed_out"}),  # the API refused the token and a refresh could not cure it
}


def build_event(
    kind: str,
    outcome: str | None = None,
    *,
    issuer: str | None = None,
    subject: str | None = None,
    session_handle: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """The event as plain data (JSON, like every job argument), with the request's address, agent and id."""
    allowed = KINDS.get(kind, frozenset())
    if allowed is not None and outcome not in allowed:
        raise ValueError(f"audit event {kind!r} cannot have outcome {outcome!r}")
    in_request = has_request_context()
    return {
        "event_id": secrets.token_hex(16),
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "kind": kind,
        "outcome": clean_text(outcome, limits.OUTCOME_MAX),
        "detail": clean_text(detail, limits.DETAIL_MAX),
        "issuer": issuer,
        "subject": subject,
        "session_handle": session_handle,
        "client_address": (request.remote_addr if in_request else None),
        "user_agent": clean_text(request.user_agent.string, limits.USER_AGENT_MAX) if in_request else None,
        "request_id": current_request_id(),
    }


def record(kind: str, outcome: str | None = None, **fields: Any) -> None:
    """Record one security event (see `build_event` for the fields); never raises for storage trouble.

    Inside `jobs.queues.queued_together` the event is queued at the block's end, with the block's other
    jobs: if the queue and the outbox both refuse them, the block's end raises (the request answers 503).
    """
    event = build_event(kind, outcome, **fields)
    try:
        enqueue(store_audit_event, event)
    except (RedisError, SQLAlchemyError) as error:
        log.error("audit event %s lost: queue and outbox both failed (%s)", kind, type(error).__name__)


def record_for_session(kind: str, outcome: str | None = None, *, detail: str | None = None) -> None:
    """Record an event of the signed-in user of this request (call it before their session ends)."""
    stored = current_session()
    identity = stored.identity
    record(
        kind,
        outcome,
        issuer=identity.issuer if identity else None,
        subject=identity.subject if identity else None,
        session_handle=stored.handle,
        detail=detail,
    )
