"""The audit trail: one row per security event, written by the worker (audit/events.py says which).

Identical events of one UTC minute share a row: `repeats` counts them (audit/store.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.user import as_utc_iso
from users import schema

# Lengths of the free-form parts; longer values are cut before they are queued.
KIND_MAX = 32
OUTCOME_MAX = 32
DETAIL_MAX = 200
ADDRESS_MAX = 45  # an IPv6 address in full
USER_AGENT_MAX = 256
REQUEST_ID_MAX = 64
EVENT_ID_MAX = 32
REPEAT_KEY_LENGTH = 32  # hex digits of a sha256: 128 bits


class AuditEvent(Model):
    """One security event: what happened, to whom, from where, in which request."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_time", "issuer", "subject", "occurred_at"),
        Index("ix_audit_events_time", "occurred_at"),
        # Unique, yet many NULLs (rows stored before coalescing) are allowed, on SQLite and PostgreSQL.
        Index("ix_audit_events_repeat_key", "repeat_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Chosen by the web when the event happened: a job that runs twice stores it once.
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_MAX), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    outcome: Mapped[str | None] = mapped_column(String(OUTCOME_MAX))
    detail: Mapped[str | None] = mapped_column(String(DETAIL_MAX))
    issuer: Mapped[str | None] = mapped_column(String(schema.ISSUER_MAX))
    subject: Mapped[str | None] = mapped_column(String(schema.SUBJECT_MAX))
    session_handle: Mapped[str | None] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX))
    # Identical events of one minute (audit/store.py repeat_key) are one row. Its event_id, request_id and
    # occurred_at are those of the event that made the row; `repeats` counts every one of them.
    repeat_key: Mapped[str | None] = mapped_column(String(REPEAT_KEY_LENGTH))
    repeats: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The latest of them; NULL on rows stored before coalescing, which are one event each.
    last_occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def to_dict(self) -> dict[str, object]:
        """Plain data for `audit list --json`."""
        return {
            "time": as_utc_iso(self.occurred_at),
            "kind": self.kind,
            "outcome": self.outcome,
            "detail": self.detail,
            "issuer": self.issuer,
            "subject": self.subject,
            "session": self.session_handle,
            "address": self.client_address,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
            "event_id": self.event_id,
            "repeats": self.repeats,
            "last_time": as_utc_iso(self.last_occurred_at or self.occurred_at),
        }
