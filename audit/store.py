"""The audit trail in SQL: store events (each once), read them back, prune old ones.

Identical events of one UTC minute are stored as one row with a count (`repeats`), so a user repeating
an action up to their rate limit adds a row a minute, not one per request. "Identical" is every field
`_SAME_EVENT` names; the event id, request id and exact time are not compared.

A job run twice counts its event once: an event whose id is stored (the one that made its row) is
skipped, and a batch is one transaction, so a batch that did not commit is applied again in full.
Residual: the id of an event counted into an existing row is not kept, so such an event whose job runs
again after its transaction committed (the worker killed between the commit and RQ marking the job
finished, or an outbox row enqueued twice) is counted again; so is any event of which two workers store
two copies at the same moment on PostgreSQL (neither sees the other's row until it commits). A count
can then be too high by those events, never too low, and no event goes missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Select, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import audit as limits
from models.audit import AuditEvent
from models.batch_queries import values_in
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

# The fields two events must share to be counted in one row (with their UTC minute).
_SAME_EVENT = ("kind", "outcome", "detail", "issuer", "subject", "session_handle", "client_address", "user_agent")


def storable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The row for one queued event; ValueError when it lacks its id, time or kind."""
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= limits.EVENT_ID_MAX:
        raise ValueError("audit event without a usable event_id")
    occurred_at = datetime.fromisoformat(str(event.get("occurred_at")))
    # In UTC: SQLite keeps the wall-clock time without its offset, and the minute of a repeat is UTC's.
    occurred_at = occurred_at.astimezone(UTC) if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
    row: dict[str, Any] = {"event_id": event_id, "occurred_at": occurred_at}
    row |= {name: clean_text(event.get(name), limit) for name, limit in _TEXT_LIMITS.items()}
    if not row["kind"]:
        raise ValueError("audit event without a kind")
    row["repeat_key"] = repeat_key(row)
    return row


def repeat_key(row: Mapping[str, Any]) -> str:
    """What identical events of one UTC minute share: a sha256 prefix of their `_SAME_EVENT` fields and minute."""
    minute = row["occurred_at"].astimezone(UTC).replace(second=0, microsecond=0)
    # JSON keeps None apart from "" and no field can run into the next.
    same = json.dumps([*(row[name] for name in _SAME_EVENT), minute.isoformat()], ensure_ascii=False)
    return hashlib.sha256(same.encode()).hexdigest()[: limits.REPEAT_KEY_LENGTH]


def store_events(events: Sequence[Mapping[str, Any]]) -> None:
    """Store the events in the current transaction: each once, identical ones of a minute as one row with a count."""
    rows = _coalesced(_not_stored([storable(event) for event in events]))
    if rows:
        # Rows as executemany parameters, not one VALUES list: the statement is then the same for any number
        # of rows, where a VALUES list of a batch's events was compiled anew for every batch.
        db.session.execute(_upsert(), rows)


def _not_stored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of events not stored yet, each once: a job run twice, or twice in one batch, counts once."""
    by_id = {row["event_id"]: row for row in rows}
    if by_id:
        for event_id in db.session.execute(_stored_event_ids(), {"event_ids": list(by_id)}).scalars():
            del by_id[event_id]
    return list(by_id.values())


def _coalesced(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per repeat key: its earliest event, how many there were and the latest one's time.

    In key order, so two workers storing repeats of the same events lock their rows in the same order
    (on PostgreSQL they cannot deadlock).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["repeat_key"], []).append(row)
    coalesced = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda row: row["occurred_at"])
        coalesced.append(group[0] | {"repeats": len(group), "last_occurred_at": group[-1]["occurred_at"]})
    return coalesced


@lru_cache(maxsize=1)
def _stored_event_ids() -> Select[str]:
    """Which of the events :event_ids are stored (models/batch_queries.py)."""
    return select(AuditEvent.event_id).where(values_in("event_ids", AuditEvent.event_id))


def _upsert() -> Insert:
    """Insert a row, or add its count and latest time to the row of the same repeat key."""
    return _built_upsert(db.engine.dialect.name)


# Built once per dialect, as the users' upsert is (accounts/upsert.py): its `excluded` alias alone
# copies every column of the table.
@lru_cache(maxsize=2)
def _built_upsert(dialect_name: str) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(AuditEvent)
    stored_last = func.coalesce(AuditEvent.last_occurred_at, AuditEvent.occurred_at)
    # A later batch may carry an earlier event of the minute (a retried job): the latest time never goes back.
    latest = case(
        (statement.excluded.last_occurred_at > stored_last, statement.excluded.last_occurred_at), else_=stored_last
    )
    # On UPDATE both SQLite and PostgreSQL read column names as the old row's values.
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=["repeat_key"],
        set_={"repeats": AuditEvent.repeats + statement.excluded.repeats, "last_occurred_at": latest},
    )
    return upsert


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
