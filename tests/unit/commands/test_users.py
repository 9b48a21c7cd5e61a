"""`flask users list` (one JSON object per persisted user and line, with their identities); disable by any identity."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts.identities import link_identity
from accounts.persistence import persist_user
from extensions import db
from models.user import User
from sessions.user_state import read_user_state
from tests.unit.helpers import assert_sent_to_sign_in, job_record, run_queued_jobs
from tests.unit.mock_provider import ISSUER
from users.tags import user_tag


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


PARTNER = "https://partner.example.test"


def link(app: Flask, subject: str, user: str = "alice", provider: str = "partner") -> None:
    """Link (PARTNER, subject) to the account whose primary is (ISSUER, user), as the worker would."""
    record = {"user_issuer": ISSUER, "user_subject": user, "provider": provider, "issuer": PARTNER}
    with app.app_context():
        link_identity({**record, "subject": subject, "linked_at": "2026-12-10T09:00:00+00:00"})


def test_users_list_json_gives_each_user_their_identities_own_first(app: Flask) -> None:
    with app.app_context():
        persist_user(job_record())
        persist_user(job_record(subject="bob"))
    link(app, "alice-at-partner")
    result = app.test_cli_runner().invoke(args=["users", "list", "--json"])
    assert result.exit_code == 0, result.output
    alice, bob = (json.loads(line) for line in result.output.splitlines())
    assert alice["identities"] == [
        {"provider": "oidc", "issuer": ISSUER, "subject": "alice"},
        {"provider": "partner", "issuer": PARTNER, "subject": "alice-at-partner"},
    ]
    assert bob["identities"] == [{"provider": "oidc", "issuer": ISSUER, "subject": "bob"}]


def test_users_list_plain_names_the_providers_of_linked_identities(app: Flask) -> None:
    with app.app_context():
        persist_user(job_record())
        persist_user(job_record(subject="bob"))
    link(app, "alice-at-partner")
    lines = app.test_cli_runner().invoke(args=["users", "list"]).output.splitlines()
    assert lines[0].endswith("linked: partner")
    assert "linked" not in lines[1]


def test_disabling_by_a_linked_identity_disables_the_whole_account(app: Flask, signed_in: FlaskClient) -> None:
    link(app, "alice-at-partner")
    result = app.test_cli_runner().invoke(args=["users", "disable", "alice-at-partner", "--issuer", PARTNER])
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert f"the account of alice at {ISSUER}" in result.output
    with app.app_context():
        assert read_user_state(user_tag(ISSUER, "alice")).disabled
        assert not read_user_state(user_tag(PARTNER, "alice-at-partner")).disabled  # no second account made
    assert_sent_to_sign_in(signed_in)
    run_queued_jobs(app)
    with app.app_context():
        assert db.session.execute(select(User.disabled).filter_by(subject="alice")).scalar() is True

    enabled = app.test_cli_runner().invoke(args=["users", "enable", "alice-at-partner", "--issuer", PARTNER])
    assert enabled.exit_code == 0, enabled.output
    with app.app_context():
        assert not read_user_state(user_tag(ISSUER, "alice")).disabled


def test_disabling_an_unknown_identity_changes_nothing(app: Flask, signed_in: FlaskClient) -> None:
    link(app, "alice-at-partner")
    result = app.test_cli_runner().invoke(args=["users", "disable", "alice", "--issuer", PARTNER])
    assert result.exit_code != 0
    assert "no user with subject 'alice' at issuer" in result.output
    assert "nothing was changed" in result.output
    with app.app_context():
        assert not read_user_state(user_tag(ISSUER, "alice")).disabled
    assert signed_in.get("/profile").status_code == 200
