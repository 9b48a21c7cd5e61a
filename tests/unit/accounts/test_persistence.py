"""accounts/persistence.persist_user against SQLite: insert, idempotent repeats, late jobs never undo newer data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from accounts.persistence import persist_user, persist_users
from connections import session_redis
from extensions import db
from models.user import User
from tests.support.session_records import shared_profile
from tests.unit.helpers import job_record
from tests.unit.mock_provider import ISSUER


def users(app: Flask) -> list[User]:
    """Every persisted user."""
    with app.app_context():
        rows = db.session.execute(select(User).order_by(User.id)).scalars().all()
        db.session.expunge_all()
        return list(rows)


def run(app: Flask, job_record: dict[str, Any]) -> None:
    """Run the job as the worker would: inside an app context."""
    with app.app_context():
        persist_user(job_record)


def test_a_new_user_is_inserted_and_their_shared_profile_published(app: Flask) -> None:
    run(app, job_record(display_name="Ally", bio="hello", profile_version=7))
    (user,) = users(app)
    assert (user.issuer, user.subject, user.email, user.name) == (ISSUER, "alice", "alice@example.test", "Alice")
    assert (user.display_name, user.bio, user.profile_version, user.identity_version) == ("Ally", "hello", 7, 1000)
    assert user.created_at is not None
    assert user.updated_at is not None
    with app.app_context():
        assert shared_profile(session_redis(), ISSUER, "alice")["display_name"] == "Ally"


def test_repeating_a_job_changes_nothing(app: Flask) -> None:
    job = job_record(profile_version=3)
    run(app, job)
    (first,) = users(app)
    run(app, job)
    run(app, job)
    (again,) = users(app)
    assert again.id == first.id
    assert again.to_dict() == first.to_dict()


def test_the_same_subject_at_another_issuer_is_another_user(app: Flask) -> None:
    run(app, job_record())
    run(app, job_record(issuer="https://other-idp.example.test"))
    assert [user.issuer for user in users(app)] == [ISSUER, "https://other-idp.example.test"]


def test_a_newer_profile_wins(app: Flask) -> None:
    run(app, job_record(display_name="Old", profile_version=1))
    run(app, job_record(display_name="New", locale="fr", profile_version=2))
    (user,) = users(app)
    assert (user.display_name, user.locale, user.profile_version) == ("New", "fr", 2)


def test_a_late_older_profile_job_does_not_win(app: Flask) -> None:
    run(app, job_record(display_name="Newer", website="https://new.example.test/", profile_version=20))
    (before,) = users(app)
    run(app, job_record(display_name="Older", website=None, profile_version=10))
    (user,) = users(app)
    assert (user.display_name, user.website, user.profile_version) == ("Newer", "https://new.example.test/", 20)
    assert user.updated_at == before.updated_at
    with app.app_context():
        assert shared_profile(session_redis(), ISSUER, "alice")["display_name"] == "Newer"


def test_an_older_identity_does_not_overwrite_newer_claims(app: Flask) -> None:
    run(app, job_record(email="new@example.test", name="Alice New", identity_version=2000))
    # A late sign-in job: older claims, but it also carries a newer profile edit.
    run(
        app,
        job_record(
            email="old@example.test", name="Alice Old", identity_version=1500, display_name="Al", profile_version=5
        ),
    )
    (user,) = users(app)
    assert (user.email, user.name, user.identity_version) == ("new@example.test", "Alice New", 2000)
    assert (user.display_name, user.profile_version) == ("Al", 5)


def test_a_newer_identity_updates_claims_but_keeps_a_newer_profile(app: Flask) -> None:
    run(app, job_record(display_name="Edited", profile_version=50))
    run(
        app,
        job_record(
            email="changed@example.test", identity_version=3000, display_name="Provider Name", profile_version=0
        ),
    )
    (user,) = users(app)
    assert (user.email, user.identity_version) == ("changed@example.test", 3000)
    assert (user.display_name, user.profile_version) == ("Edited", 50)


def test_a_database_failure_is_logged_and_raised_for_a_retry(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with app.app_context():
        db.drop_all()
    with caplog.at_level(logging.ERROR, logger="accounts.persistence"), pytest.raises(OperationalError):
        run(app, job_record())
    assert "persist_user failed" in caplog.text


def run_batch(app: Flask, records: list[dict[str, Any]]) -> None:
    """Run a batch as the worker's work horse would: inside an app context."""
    with app.app_context():
        persist_users(records)


def test_a_batch_inserts_every_user_and_publishes_each_shared_profile(app: Flask) -> None:
    run_batch(app, [job_record(subject=name, display_name=name.title(), profile_version=3) for name in ("bo", "cy")])
    assert [(user.subject, user.display_name, user.profile_version) for user in users(app)] == [
        ("bo", "Bo", 3),
        ("cy", "Cy", 3),
    ]
    with app.app_context():
        assert shared_profile(session_redis(), ISSUER, "cy")["display_name"] == "Cy"


def test_records_of_one_user_in_a_batch_end_at_the_newest_whatever_their_order(app: Flask) -> None:
    run_batch(
        app,
        [
            job_record(display_name="Five", profile_version=5, email="e30@example.test", identity_version=30),
            job_record(display_name="Nine", profile_version=9, email="e10@example.test", identity_version=10),
            job_record(display_name="Two", profile_version=2, email="e50@example.test", identity_version=50),
            # A newer edit of one field only: the others keep what the row holds.
            job_record(
                display_name="ignored", bio="only the bio", profile_version=11, identity_version=1, only=["bio"]
            ),
        ],
    )
    (user,) = users(app)
    assert (user.display_name, user.bio, user.profile_version) == ("Nine", "only the bio", 11)
    assert (user.email, user.identity_version) == ("e50@example.test", 50)
    with app.app_context():
        assert shared_profile(session_redis(), ISSUER, "alice")["bio"] == "only the bio"


def test_a_batch_with_a_bad_record_commits_nothing(app: Flask) -> None:
    with pytest.raises(ValueError):
        run_batch(app, [job_record(subject="fine"), job_record(subject="bad", identity_version="not a number")])
    assert users(app) == []


def test_a_batch_against_a_missing_table_raises_for_a_retry(app: Flask) -> None:
    with app.app_context():
        db.drop_all()
    with pytest.raises(OperationalError):
        run_batch(app, [job_record()])
