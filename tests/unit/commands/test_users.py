"""`flask users list --json`: one JSON object per persisted user, one per line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask

from accounts.persistence import persist_user
from tests.unit.helpers import job_record
from tests.unit.mock_provider import ISSUER


def test_users_list_json_prints_one_object_per_line(app: Flask) -> None:
    with app.app_context():
        persist_user(job_record(display_name="Ally", profile_version=2))
        persist_user(job_record(subject="bob", email="bob@example.test", name="Bob", display_name="Bobby"))
    result = app.test_cli_runner().invoke(args=["users", "list", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert {"issuer", "subject", "email", "display_name", "updated_at"} <= row.keys()
        assert row["issuer"] == ISSUER
        assert datetime.fromisoformat(row["updated_at"]).utcoffset() == timedelta(0)
    assert [(row["subject"], row["email"], row["display_name"]) for row in rows] == [
        ("alice", "alice@example.test", "Ally"),
        ("bob", "bob@example.test", "Bobby"),
    ]


def test_users_list_without_users_prints_nothing(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["users", "list", "--json"])
    assert result.exit_code == 0
    assert result.output == ""


def test_users_list_plain_names_each_user(app: Flask) -> None:
    with app.app_context():
        persist_user(job_record(display_name="Ally"))
    result = app.test_cli_runner().invoke(args=["users", "list"])
    assert result.exit_code == 0
    assert "alice" in result.output
    assert "Ally" in result.output
