"""Reading the fields of a job's record: what the web queued, checked before the worker trusts it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def text_field(record: Mapping[str, Any], field: str) -> str:
    """A non-empty string field; TypeError otherwise (the job gives up on a malformed record)."""
    value = record[field]
    if not isinstance(value, str) or not value:
        raise TypeError(field)
    return value


def moment_field(value: Any, field: str = "linked_at") -> datetime:
    """An ISO 8601 time in UTC; TypeError or ValueError otherwise."""
    if not isinstance(value, str):
        raise TypeError(field)
    # In UTC: SQLite stores a time without its offset, and these are compared with stored ones.
    return as_aware(datetime.fromisoformat(value)).astimezone(UTC)


def as_aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite hands back the stored UTC times without their offset."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
