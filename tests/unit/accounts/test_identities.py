"""accounts/identities.py against SQLite: primary identities, last-used times, link and unlink jobs, lookups."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from accounts.deletion import bury
from accounts.identities import (
    AccountNotStoredYet,
    LinkedIdentity,
    account_identities,
    identity_owner,
    link_identity,
    unlink_identity,
)
from accounts.persistence import persist_signed_in_user, persist_user, persist_users
from extensions import db
from jobs.failures import PermanentJobFailure
from jobs.queues import enqueue, job_queue
from models.identity_unlink import IdentityUnlink
from models.user import User
from models.user_identity import UserIdentity
from tests.unit.conftest import AppFactory
from tests.unit.helpers import job_record, run_queued_jobs, sign_in
from tests.unit.mock_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, MockProvider
from users.tags import user_tag

PARTNER = "https://partner.example.test"
LINKED_AT = "2026-12-10T09:00:00+00:00"
UNLINKED_AT = "2026-12-10T10:00:00+00:00"


def identities(app: Flask) -> list[tuple[str, str, str, str | None]]:
    """Every identity row as (provider, issuer, subject, its user's subject), by (issuer, subject)."""
    with app.app_context():
        rows = db.session.execute(
            select(UserIdentity.provider, UserIdentity.issuer, UserIdentity.subject, User.subject)
            .outerjoin(User, User.id == UserIdentity.user_id)
            .order_by(UserIdentity.issuer, UserIdentity.subject)
        ).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]


def identity_row(app: Flask, issuer: str, subject: str) -> UserIdentity | None:
    """One identity row, detached."""
    with app.app_context():
        row = db.session.execute(
            select(UserIdentity).where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
        ).scalar()
        db.session.expunge_all()
        return row


def persist(app: Flask, **changes: Any) -> None:
    """Run one persistence job as the worker would."""
    with app.app_context():
        persist_user(job_record(**changes))


def link(subject: str = "alice-at-partner", user: str = "alice", **changes: Any) -> dict[str, Any]:
    """A link job's record: the identity (PARTNER, subject) for the account whose primary is (ISSUER, user)."""
    return {
        "user_issuer": ISSUER,
        "user_subject": user,
        "provider": "partner",
        "issuer": PARTNER,
        "subject": subject,
        "linked_at": LINKED_AT,
        **changes,
    }


def unlink(subject: str = "alice-at-partner", user: str = "alice", **changes: Any) -> dict[str, Any]:
    """An unlink job's record, asked for an hour after LINKED_AT."""
    return {
        "user_issuer": ISSUER,
        "user_subject": user,
        "issuer": PARTNER,
        "subject": subject,
        "unlinked_at": UNLINKED_AT,
        **changes,
    }


def run(app: Flask, job: Any, record: dict[str, Any]) -> None:
    """Run a job function inside an app context."""
    with app.app_context():
        job(record)


def queued(app: Flask, job: Any, record: dict[str, Any]) -> Job:
    """Queue a job as the web would (with its retry policy), not run yet."""
    with app.app_context():
        found = enqueue(job, record)
    assert found is not None
    return found


def perform(app: Flask, job: Job) -> None:
    """Run a queued job as RQ's worker does (it is the current job while it runs)."""
    with app.app_context():
        job.perform()


def used(app: Flask, issuer: str, subject: str) -> datetime | None:
    """An identity's last_used_at, in UTC."""
    row = identity_row(app, issuer, subject)
    assert row is not None
    moment = row.last_used_at
    return None if moment is None else moment.replace(tzinfo=moment.tzinfo or UTC)


# The primary identity, written with the user's row.


def test_a_sign_in_s_persistence_stores_the_account_s_own_identity(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    assert sign_in(client, provider, worker=False).status_code == 302
    assert identities(app) == []
    assert run_queued_jobs(app) >= 1
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]
    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        row = db.session.execute(select(UserIdentity)).scalar_one()
        assert (row.user_id, row.linked_at) == (user.id, user.created_at)
        assert row.last_used_at is not None  # the sign-in used it (signin/session.py passes signed_in_with)


def test_repeated_and_batched_jobs_store_one_identity_row_per_user(app: Flask) -> None:
    persist(app)
    persist(app, profile_version=5)
    with app.app_context():
        persist_users([job_record(), job_record(subject="bob"), job_record(subject="bob", profile_version=2)])
    assert identities(app) == [("oidc", ISSUER, "alice", "alice"), ("oidc", ISSUER, "bob", "bob")]


def test_a_batch_and_single_jobs_leave_the_same_identity_rows(make_app: AppFactory, tmp_path: Path) -> None:
    records = [
        job_record(subject="cy", signed_in_with={"provider": "oidc", "issuer": ISSUER, "subject": "cy"}),
        job_record(subject="bo"),
        job_record(issuer=PARTNER, subject="bo"),
    ]
    single = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'single.db'}")
    batched = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'batched.db'}")
    with single.app_context():
        for record in records:
            persist_user(dict(record))
    with batched.app_context():
        persist_users(records)
    # No configured provider issues PARTNER.
    expected = [("oidc", ISSUER, "bo", "bo"), ("oidc", ISSUER, "cy", "cy"), ("unknown", PARTNER, "bo", "bo")]
    assert identities(single) == expected
    assert identities(batched) == expected
    assert used(single, ISSUER, "cy") is not None and used(batched, ISSUER, "cy") is not None
    assert used(single, ISSUER, "bo") is None and used(batched, ISSUER, "bo") is None


def test_the_primary_identity_is_named_after_the_provider_that_issues_it(make_app: AppFactory) -> None:
    app = make_app(
        OIDC_ISSUER="",
        OIDC_CLIENT_ID="",
        OIDC_CLIENT_SECRET="",
        OIDC_PROVIDERS="corp,partner",
        OIDC_CORP_ISSUER=ISSUER,
        OIDC_CORP_CLIENT_ID=CLIENT_ID,
        OIDC_CORP_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_PARTNER_ISSUER=PARTNER,
        OIDC_PARTNER_CLIENT_ID="partner-client",
        OIDC_PARTNER_CLIENT_SECRET="partner-secret",
    )
    persist(app)
    persist(app, issuer=PARTNER, subject="pat")
    assert identities(app) == [("corp", ISSUER, "alice", "alice"), ("partner", PARTNER, "pat", "pat")]


# A sign-in's identity marked as used.


def test_the_identity_a_sign_in_used_is_marked_used_by_its_persistence(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link())
    assert used(app, PARTNER, "alice-at-partner") is None
    before = datetime.now(UTC)
    persist(app, signed_in_with={"provider": "partner", "issuer": PARTNER, "subject": "alice-at-partner"})
    moment = used(app, PARTNER, "alice-at-partner")
    assert moment is not None and before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert used(app, ISSUER, "alice") is None  # only the identity it used


def test_a_persistence_job_never_moves_last_used_backwards(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link())
    later = datetime(2100, 1, 1, tzinfo=UTC)
    with app.app_context():
        db.session.execute(update(UserIdentity).where(UserIdentity.issuer == PARTNER).values(last_used_at=later))
        db.session.commit()
    persist(app, signed_in_with={"provider": "partner", "issuer": PARTNER, "subject": "alice-at-partner"})
    assert used(app, PARTNER, "alice-at-partner") == later


def test_signed_in_with_another_user_s_identity_changes_nothing(app: Flask) -> None:
    persist(app)
    persist(app, subject="bob")
    run(app, link_identity, link("bob-at-partner", user="bob"))
    persist(app, signed_in_with={"provider": "partner", "issuer": PARTNER, "subject": "bob-at-partner"})
    assert used(app, PARTNER, "bob-at-partner") is None
    # Another user's own identity is not theirs either.
    persist(app, signed_in_with={"provider": "oidc", "issuer": ISSUER, "subject": "bob"})
    assert used(app, ISSUER, "bob") is None
    assert identities(app) == [
        ("oidc", ISSUER, "alice", "alice"),
        ("oidc", ISSUER, "bob", "bob"),
        ("partner", PARTNER, "bob-at-partner", "bob"),
    ]


def test_signed_in_with_an_identity_not_linked_yet_creates_no_row(app: Flask) -> None:
    persist(app, signed_in_with={"provider": "partner", "issuer": PARTNER, "subject": "alice-at-partner"})
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


def test_a_malformed_signed_in_with_is_ignored_and_the_user_still_stored(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="accounts.identities"):
        persist(app, signed_in_with={"issuer": PARTNER, "subject": 7})
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]
    assert user_tag(ISSUER, "alice") in caplog.text
    assert "alice" not in caplog.text.replace(user_tag(ISSUER, "alice"), "")


def test_persist_signed_in_user_carries_the_identity_the_sign_in_used(app: Flask, signed_in: FlaskClient) -> None:
    run_queued_jobs(app)
    run(app, link_identity, link())
    signed_with = {"provider": "partner", "issuer": PARTNER, "subject": "alice-at-partner"}
    with signed_in:
        assert signed_in.get("/").status_code == 200
        persist_signed_in_user(signed_in_with=signed_with)
    with app.app_context():
        (job,) = [job for job in job_queue().get_jobs() if job.args[0].get("signed_in_with") == signed_with]
    assert job.args[0]["signed_in_with"] == signed_with
    assert (job.args[0]["issuer"], job.args[0]["subject"]) == (ISSUER, "alice")  # the account's own identity
    run_queued_jobs(app)
    assert used(app, PARTNER, "alice-at-partner") is not None


def test_a_record_older_than_the_deletion_stores_no_identity(app: Flask) -> None:
    persist(app, identity_version=1000)
    with app.app_context():
        bury(ISSUER, "alice", 2000, datetime.now(UTC))
        db.session.commit()
    persist(app, identity_version=1500, signed_in_with={"provider": "oidc", "issuer": ISSUER, "subject": "alice"})
    assert identities(app) == []


# Linking.


def test_linking_stores_the_identity_once(app: Flask) -> None:
    persist(app)
    for _ in range(3):
        run(app, link_identity, link())
    assert identities(app) == [("oidc", ISSUER, "alice", "alice"), ("partner", PARTNER, "alice-at-partner", "alice")]
    row = identity_row(app, PARTNER, "alice-at-partner")
    assert row is not None and row.linked_at.replace(tzinfo=UTC) == datetime.fromisoformat(LINKED_AT)


def test_a_link_before_the_account_s_first_row_is_retried(app: Flask) -> None:
    job = queued(app, link_identity, link())
    retries = job.retries_left
    assert retries
    with pytest.raises(AccountNotStoredYet):
        perform(app, job)
    assert job.retries_left == retries  # not given up: RQ retries it
    assert identities(app) == []
    persist(app)
    perform(app, job)  # the retry, once the sign-in's job has run
    assert ("partner", PARTNER, "alice-at-partner", "alice") in identities(app)


def test_another_user_s_identity_is_never_moved(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    persist(app)
    persist(app, subject="bob")
    run(app, link_identity, link("shared", user="bob"))
    job = queued(app, link_identity, link("shared"))
    with caplog.at_level(logging.ERROR), pytest.raises(PermanentJobFailure):
        perform(app, job)
    assert job.retries_left == 0  # for good
    assert ("partner", PARTNER, "shared", "bob") in identities(app)
    assert user_tag(ISSUER, "alice") in caplog.text and user_tag(ISSUER, "bob") in caplog.text
    assert "shared" not in caplog.text and "bob@" not in caplog.text


def test_another_account_s_own_identity_is_never_linked(app: Flask) -> None:
    persist(app)
    persist(app, issuer=PARTNER, subject="pat")
    with app.app_context():  # as a race leaves it: pat's row without its identity row
        db.session.execute(UserIdentity.__table__.delete().where(UserIdentity.issuer == PARTNER))
        db.session.commit()
    with pytest.raises(PermanentJobFailure):
        run(app, link_identity, link("pat"))
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


def test_a_link_asked_for_before_the_account_was_deleted_is_dropped(app: Flask) -> None:
    persist(app)
    with app.app_context():
        bury(ISSUER, "alice", 2000, datetime.fromisoformat(LINKED_AT) + timedelta(minutes=1))
        db.session.commit()
    persist(app, identity_version=3000)  # a new sign-in: a new account, with the same identity
    with pytest.raises(PermanentJobFailure):
        run(app, link_identity, link())
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


@pytest.mark.parametrize(
    "bad",
    [{"issuer": None}, {"linked_at": "yesterday"}, {"subject": ""}, {"provider": 3}, {"provider": "p" * 33}],
    ids=["no issuer", "bad time", "empty subject", "bad provider", "long provider"],
)
def test_a_malformed_link_fails_for_good(app: Flask, bad: dict[str, Any]) -> None:
    persist(app)
    with pytest.raises(PermanentJobFailure):
        run(app, link_identity, link(**bad))
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


# Unlinking.


def test_unlinking_removes_the_link_and_is_idempotent(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link())
    run(app, link_identity, link("other"))
    run(app, unlink_identity, unlink())
    run(app, unlink_identity, unlink())
    assert identities(app) == [("oidc", ISSUER, "alice", "alice"), ("partner", PARTNER, "other", "alice")]


def test_unlinking_the_account_s_own_identity_is_refused(app: Flask) -> None:
    persist(app)
    with pytest.raises(PermanentJobFailure):
        run(app, unlink_identity, unlink(issuer=ISSUER, subject="alice"))
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


def test_unlinking_never_removes_another_user_s_identity(app: Flask) -> None:
    persist(app)
    persist(app, subject="bob")
    run(app, link_identity, link("bob-at-partner", user="bob"))
    run(app, unlink_identity, unlink("bob-at-partner"))
    run(app, unlink_identity, unlink(issuer=ISSUER, subject="bob"))
    assert ("partner", PARTNER, "bob-at-partner", "bob") in identities(app)
    assert ("oidc", ISSUER, "bob", "bob") in identities(app)


# Link and unlink jobs of one identity, in any order (RQ retries a link whose account has no row yet).


def test_a_link_job_run_after_its_unlink_stores_nothing(app: Flask) -> None:
    persist(app)
    run(app, unlink_identity, unlink())  # the unlink's job ran first; the link's is retried after it
    with pytest.raises(PermanentJobFailure):
        run(app, link_identity, link())
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


def test_an_unlink_job_run_after_the_identity_was_linked_again_keeps_the_new_link(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link(linked_at="2026-12-10T11:00:00+00:00"))  # linked again after the unlink
    run(app, unlink_identity, unlink())  # the earlier unlink's job, run late
    assert ("partner", PARTNER, "alice-at-partner", "alice") in identities(app)


def test_linking_again_after_an_unlink_stores_the_new_link(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link())
    run(app, unlink_identity, unlink())
    run(app, link_identity, link(linked_at="2026-12-10T11:00:00+00:00"))
    assert ("partner", PARTNER, "alice-at-partner", "alice") in identities(app)


def test_an_older_unlink_run_late_does_not_move_the_latest_one_back(app: Flask) -> None:
    persist(app)
    run(app, unlink_identity, unlink(unlinked_at="2026-12-10T12:00:00+00:00"))
    run(app, unlink_identity, unlink())  # 10:00, run after the 12:00 one
    with pytest.raises(PermanentJobFailure):
        run(app, link_identity, link(linked_at="2026-12-10T11:00:00+00:00"))  # asked for before 12:00
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


def test_one_account_s_unlink_never_refuses_another_account_s_link(app: Flask) -> None:
    persist(app)
    persist(app, subject="bob")
    run(app, unlink_identity, unlink())  # alice unlinked it at 10:00
    run(app, link_identity, link(user="bob"))  # bob's link, asked for at 09:00
    assert ("partner", PARTNER, "alice-at-partner", "bob") in identities(app)


def test_an_unlink_queued_before_unlinks_carried_their_time_still_unlinks(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link(linked_at="2026-12-01T09:00:00+00:00"))
    old_record = unlink()
    del old_record["unlinked_at"]
    run(app, unlink_identity, old_record)
    assert identities(app) == [("oidc", ISSUER, "alice", "alice")]


@pytest.mark.parametrize("bad", [{"unlinked_at": 17}, {"unlinked_at": "yesterday"}, {"unlinked_at": ""}])
def test_an_unlink_record_with_a_malformed_time_changes_nothing(app: Flask, bad: dict[str, Any]) -> None:
    persist(app)
    run(app, link_identity, link())
    with pytest.raises(PermanentJobFailure):
        run(app, unlink_identity, unlink(**bad))
    assert ("partner", PARTNER, "alice-at-partner", "alice") in identities(app)


# Deletion.


def test_deleting_an_account_deletes_its_identities_only(app: Flask) -> None:
    persist(app)
    persist(app, subject="bob")
    run(app, link_identity, link())
    run(app, link_identity, link("bob-at-partner", user="bob"))
    run(app, unlink_identity, unlink("alice-old-partner"))
    run(app, unlink_identity, unlink("bob-old-partner", user="bob"))
    with app.app_context():
        bury(ISSUER, "alice", 5000, datetime.now(UTC))
        db.session.commit()
    assert identities(app) == [("oidc", ISSUER, "bob", "bob"), ("partner", PARTNER, "bob-at-partner", "bob")]
    with app.app_context():
        kept = db.session.execute(select(IdentityUnlink.user_subject, IdentityUnlink.subject)).all()
    assert [tuple(row) for row in kept] == [("bob", "bob-old-partner")]


def test_a_row_a_newer_sign_in_wrote_keeps_its_identities(app: Flask) -> None:
    persist(app, identity_version=9000)
    run(app, link_identity, link())
    with app.app_context():
        bury(ISSUER, "alice", 5000, datetime.now(UTC))
        db.session.commit()
    assert len(identities(app)) == 2


# The web's questions.


def test_identity_owner_finds_the_account_by_any_of_its_identities(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link())
    with app.app_context():
        assert identity_owner(ISSUER, "alice") == (ISSUER, "alice")
        assert identity_owner(PARTNER, "alice-at-partner") == (ISSUER, "alice")
        assert identity_owner(PARTNER, "alice") is None
        assert identity_owner(ISSUER, "alice-at-partner") is None


def test_account_identities_lists_the_primary_first_then_by_link_time(app: Flask) -> None:
    persist(app)
    run(app, link_identity, link("a-later", linked_at="2026-12-11T09:00:00+00:00"))
    run(app, link_identity, link("z-earlier", provider="third"))
    run(app, link_identity, link("latest", issuer="https://aaa.example.test", linked_at="2026-12-12T09:00:00+00:00"))
    persist(app, signed_in_with={"provider": "partner", "issuer": PARTNER, "subject": "a-later"})
    with app.app_context():
        listed = account_identities(ISSUER, "alice")
        assert account_identities(PARTNER, "a-later") == []  # a linked identity is no account's primary
        assert account_identities(ISSUER, "nobody") == []
    assert [(each.provider, each.subject, each.primary) for each in listed] == [
        ("oidc", "alice", True),
        ("third", "z-earlier", False),
        ("partner", "a-later", False),
        ("partner", "latest", False),
    ]
    assert listed[1].linked_at == datetime.fromisoformat(LINKED_AT).timestamp()
    assert listed[1].last_used_at is None
    assert isinstance(listed[2].last_used_at, float)


def test_account_identities_shows_the_primary_of_a_row_without_its_identity_row(app: Flask) -> None:
    persist(app)
    with app.app_context():
        db.session.execute(UserIdentity.__table__.delete())
        db.session.commit()
        (only,) = account_identities(ISSUER, "alice")
    assert (only.provider, only.issuer, only.subject, only.primary) == ("oidc", ISSUER, "alice", True)
    assert isinstance(only, LinkedIdentity) and only.last_used_at is None


def test_the_queries_raise_when_the_database_cannot_be_read(app: Flask) -> None:
    with app.app_context():
        db.drop_all()
        with pytest.raises(SQLAlchemyError):
            identity_owner(ISSUER, "alice")
        with pytest.raises(SQLAlchemyError):
            account_identities(ISSUER, "alice")
