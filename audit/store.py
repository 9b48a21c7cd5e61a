"""The audit trail in SQL: store events (each once), read them back, prune old ones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import audit as limits
from models.audit import AuditEvent
from users.schema import ISSUER_MAX, SUBJECT_MAX, clean_text

# Column -> longest value it takes; anything longer is cut, anything but text dropped.
_TEXT_LIMITS = {
    "kind": limits.KIND_MAX,
    "outcome": limits.OUTCOME_MAX,
    "detail": limits.DETAIL_MAX,
    "issuer": ISSUER_MAX,
    "subject": SUBJECT_MAX,
    "session_handle": 32,
    "client_address": limits.ADDRESS_MAX,
    "user_agent": limits.USER_AGENT_MAX,
    "request_id": limits.REQUEST_ID_MAX,
}


def storable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The row for one queued event; ValueError when it lacks its id, time or kind."""
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= limits.EVENT_ID_MAX:
        raise ValueError("audit event without a usable event_id")
    occurred_at = datetime.fromisoformat(str(event.get("occurred_at")))
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    row: dict[str, Any] = {"event_id": event_id, "occurred_at": occurred_at}
    row |= {name: clean_text(event.get(name), limit) for name, limit in _TEXT_LIMITS.items()}
    if not row["kind"]:
        raise ValueError("audit event without a kind")
    return row


def store_events(events: Sequence[Mapping[str, Any]]) -> None:
    """Insert the events in the current transaction; one already stored (a job run twice) is skipped."""
    rows = [storable(event) for event in events]
    if not rows:
        return
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    # Rows as executemany parameters, not one VALUES list: the statement is then the same for any number of
    # rows, where a VALUES list of a batch's events was compiled anew for every batch.
    statement = dialect.insert(AuditEvent).on_conflict_do_nothing(index_elements=["event_id"])
    db.session.execute(statement, rows)


def events(
    *,
    issuer: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    after: datetime | None = None,
    limit: int | None = None,
) -> Iterator[AuditEvent]:
    """Events oldest first (newest first when `limit` is given), optionally of one user, from or after a time."""
    query = select(AuditEvent)
    if after is not None:
        query = query.where(AuditEvent.occurred_at > after)
    if issuer is not None:
        query = query.where(AuditEvent.issuer == issuer)
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if limit is None:
        query = query.order_by(AuditEvent.occurred_at, AuditEvent.id)
    else:
        query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
    yield from db.session.execute(query).scalars()


def prune_events(older_than: datetime) -> int:
    """Delete events that happened before `older_than`; returns how many."""
    result = db.session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < older_than))
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
