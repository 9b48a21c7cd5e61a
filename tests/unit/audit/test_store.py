"""Storing audit events: identical events of one UTC minute are one row with a count, each event counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from audit.events import build_event
from audit.jobs import store_audit_event, store_audit_events
from extensions import db
from models.audit import AuditEvent
from tests.unit.mock_provider import ISSUER

MINUTE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ALICE_REVOKES = {"issuer": ISSUER, "subject": "alice", "session_handle": "h-1", "detail": "0 other sessions ended"}


def revokes(app: Flask, count: int, at: datetime = MINUTE, **fields: Any) -> list[dict[str, Any]]:
    """`count` revoke-others of alice's session, as one request after another builds them, from `at` on."""
    fields = ALICE_REVOKES | fields
    outcome = fields.pop("outcome", "user_others")
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        built = [build_event("session_revoked", outcome, **fields) for _ in range(count)]
    return [
        event | {"occurred_at": (at + timedelta(milliseconds=100 * index)).isoformat()}
        for index, event in enumerate(built)
    ]


def stored(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
        rows = db.session.execute(query).scalars().all()
        db.session.expunge_all()
        return list(rows)


def store(app: Flask, events: list[dict[str, Any]]) -> None:
    """One batch, as the worker stores it."""
    with app.app_context():
        store_audit_events(events)


def test_thirty_identical_events_in_one_batch_are_one_row_counting_thirty(app: Flask) -> None:
    events = revokes(app, 30)
    store(app, events)
    [row] = stored(app)
    assert row.repeats == 30
    # The row is the earliest event's, and remembers the latest one's time.
    assert (row.event_id, row.request_id) == (events[0]["event_id"], events[0]["request_id"])
    assert row.occurred_at.replace(tzinfo=UTC) == MINUTE
    assert row.last_occurred_at is not None
    assert row.last_occurred_at.replace(tzinfo=UTC) == MINUTE + timedelta(milliseconds=2900)


def test_identical_events_in_several_batches_add_up_in_one_row(app: Flask) -> None:
    events = revokes(app, 30)
    store(app, events[:10])
    store(app, events[10:25])
    for event in events[25:]:
        with app.app_context():
            store_audit_event(event)  # one job at a time, as without batching
    [row] = stored(app)
    assert row.repeats == 30


def test_an_earlier_event_stored_later_does_not_move_the_latest_time_back(app: Flask) -> None:
    events = revokes(app, 3)
    store(app, [events[2]])
    store(app, [events[0], events[1]])
    [row] = stored(app)
    assert row.repeats == 3
    assert row.last_occurred_at is not None
    assert row.last_occurred_at.replace(tzinfo=UTC) == MINUTE + timedelta(milliseconds=200)


def test_an_event_stored_twice_is_counted_once(app: Flask) -> None:
    first, second = revokes(app, 2)
    store(app, [first, first, second, second])  # two copies of each job in one batch
    store(app, [first])  # the job that made the row, run again
    [row] = stored(app)
    assert row.repeats == 2


def test_a_batch_that_did_not_commit_counts_nothing_and_counts_in_full_when_run_again(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = revokes(app, 3)
    store(app, events[:1])

    def worker_killed() -> None:
        raise OperationalError("COMMIT", {}, Exception("the worker went away"))

    with app.app_context():
        monkeypatch.setattr(db.session, "commit", worker_killed)
        with pytest.raises(OperationalError):
            store_audit_events(events)
        monkeypatch.undo()
    assert [row.repeats for row in stored(app)] == [1]
    store(app, events)  # the retried batch
    assert [row.repeats for row in stored(app)] == [3]


def test_events_differing_in_any_compared_field_are_rows_of_their_own(app: Flask) -> None:
    store(app, revokes(app, 2))
    store(app, revokes(app, 2, session_handle="h-2"))
    store(app, revokes(app, 2, outcome="user"))
    store(app, revokes(app, 2, detail="1 other sessions ended"))
    store(app, revokes(app, 2, subject="bob"))
    assert [row.repeats for row in stored(app)] == [2, 2, 2, 2, 2]


def test_the_next_minute_starts_a_new_row(app: Flask) -> None:
    late = revokes(app, 2, at=MINUTE + timedelta(seconds=59, milliseconds=850))  # 09:00:59.850, 09:00:59.950
    early_next = revokes(app, 1, at=MINUTE + timedelta(minutes=1))
    store(app, [*late, *early_next, *revokes(app, 1, at=MINUTE + timedelta(minutes=1, seconds=59))])
    assert [(row.occurred_at.replace(tzinfo=UTC), row.repeats) for row in stored(app)] == [
        (MINUTE + timedelta(seconds=59, milliseconds=850), 2),
        (MINUTE + timedelta(minutes=1), 2),
    ]


def test_the_minute_is_utc_s_whatever_offset_the_time_carries(app: Flask) -> None:
    utc, oslo = revokes(app, 2)
    oslo["occurred_at"] = (MINUTE + timedelta(seconds=30)).astimezone(timezone(timedelta(hours=1))).isoformat()
    store(app, [utc])
    store(app, [oslo])
    [row] = stored(app)
    assert row.repeats == 2
    assert row.last_occurred_at is not None
    assert row.last_occurred_at.replace(tzinfo=UTC) == MINUTE + timedelta(seconds=30)


def test_an_event_alone_in_its_minute_counts_one(app: Flask) -> None:
    [event] = revokes(app, 1)
    store(app, [event])
    [row] = stored(app)
    listed = row.to_dict()
    assert (listed["repeats"], listed["time"], listed["last_time"]) == (1, MINUTE.isoformat(), MINUTE.isoformat())
