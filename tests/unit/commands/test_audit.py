"""`flask --app app audit list`: one JSON object per line, filtered by subject and time; bad input is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import Flask

from audit.events import build_event
from audit.jobs import store_audit_event
from tests.unit.mock_provider import ISSUER


def store(app: Flask, subject: str, kind: str, outcome: str, at: datetime) -> None:
    with app.test_request_context("/"):
        event = build_event(kind, outcome, issuer=ISSUER, subject=subject) | {"occurred_at": at.isoformat()}
    with app.app_context():
        store_audit_event(event)


def listed(app: Flask, *args: str) -> list[dict[str, object]]:
    result = app.test_cli_runner().invoke(args=["audit", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_audit_list_json_prints_every_event_oldest_first(app: Flask) -> None:
    start = datetime(2026, 12, 1, 8, 55, tzinfo=UTC)
    store(app, "bob", "sign_out", "user", start + timedelta(minutes=5))
    store(app, "alice", "sign_in", "success", start)
    rows = listed(app)
    assert [(row["subject"], row["kind"]) for row in rows] == [("alice", "sign_in"), ("bob", "sign_out")]
    assert set(rows[0]) == {
        "time", "kind", "outcome", "detail", "issuer", "subject", "session", "address", "user_agent", "request_id",
        "event_id", "repeats", "last_time",
    }  # fmt: skip
    assert datetime.fromisoformat(str(rows[0]["time"])) == start
    assert (rows[0]["repeats"], rows[0]["last_time"]) == (1, rows[0]["time"])


def test_audit_list_filters_by_subject_and_since(app: Flask) -> None:
    start = datetime(2026, 12, 1, 8, 55, tzinfo=UTC)
    store(app, "alice", "sign_in", "success", start)
    store(app, "alice", "sign_out", "user", start + timedelta(hours=1))
    store(app, "bob", "sign_in", "success", start + timedelta(hours=2))
    assert [row["kind"] for row in listed(app, "--subject", "alice")] == ["sign_in", "sign_out"]
    assert [row["subject"] for row in listed(app, "--since", "2026-12-01T09:30:00Z")] == ["alice", "bob"]
    assert [row["kind"] for row in listed(app, "--subject", "alice", "--since", "2026-12-01T09:30:00")] == ["sign_out"]
    assert listed(app, "--subject", "nobody") == []


def test_audit_list_refuses_a_time_that_is_not_iso_8601(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["audit", "list", "--json", "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "is not an ISO 8601 time" in result.output
    assert "Traceback" not in result.output


def test_audit_list_plain_names_each_event(app: Flask) -> None:
    store(app, "alice", "sign_in", "success", datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    result = app.test_cli_runner().invoke(args=["audit", "list"])
    assert result.exit_code == 0
    assert result.output.split() == ["2026-12-01T09:00:00+00:00", "sign_in", "success", f"alice@{ISSUER}"]


def test_audit_list_shows_identical_events_of_a_minute_once_with_their_count(app: Flask) -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for second in range(30):
        store(app, "alice", "session_revoked", "user_others", start + timedelta(seconds=second))
    [row] = listed(app)
    assert (row["kind"], row["repeats"]) == ("session_revoked", 30)
    assert datetime.fromisoformat(str(row["time"])) == start
    assert datetime.fromisoformat(str(row["last_time"])) == start + timedelta(seconds=29)

    result = app.test_cli_runner().invoke(args=["audit", "list"])
    assert result.exit_code == 0
    assert result.output.split() == [
        "2026-12-01T09:00:00+00:00", "session_revoked", "user_others", f"alice@{ISSUER}", "\N{MULTIPLICATION SIGN}30"
    ]  # fmt: skip
