"""Delete my account: confirmation page, CSRF, a fresh sign-in, every session ended, the row gone for good
(a persistence job still queued for the user never brings it back), and a new sign-in starts afresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts.deletion import delete_user_row
from extensions import db
from models.deleted_user import DeletedUser
from models.user import User
from sessions import keys
from tests.unit.helpers import (
    RecordingRedis,
    queued_jobs,
    queued_records,
    run_queued_jobs,
    session_exists,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import ISSUER, MockProvider, authorize_params, callback_query


def fresh_sign_in(client: FlaskClient, provider: MockProvider, subject: str = "alice", **claims: Any) -> None:
    """Sign in with an authentication made just now (so deleting needs no re-authentication)."""
    landed = sign_in(client, provider, subject, auth_time=int(time.time()), **claims)
    assert landed.status_code == 302, landed.get_data(as_text=True)


def delete_account(client: FlaskClient) -> Any:
    """Open the confirmation page and press its button."""
    return client.post("/account/delete", data={"csrf_token": signed_in_page_token(client, "/account/delete")})


def row(app: Flask, subject: str = "alice") -> User | None:
    with app.app_context():
        found = db.session.execute(select(User).filter_by(issuer=ISSUER, subject=subject)).scalar_one_or_none()
        db.session.expunge_all()
        return found


def user_state(redis: RecordingRedis, subject: str = "alice") -> dict[bytes, bytes]:
    return redis.hgetall(keys.user_key(keys.user_tag(ISSUER, subject)))


def test_the_confirmation_page_needs_a_signed_in_user(client: FlaskClient, provider: MockProvider) -> None:
    assert client.get("/account/delete").headers["Location"].startswith("/login?next=/account/delete")
    fresh_sign_in(client, provider)
    page = client.get("/account/delete")
    assert page.status_code == 200
    assert 'data-testid="delete-account"' in page.get_data(as_text=True)


def test_deleting_without_the_csrf_token_changes_nothing(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    fresh_sign_in(client, provider)
    for data in ({}, {"csrf_token": "forged"}):
        assert client.post("/account/delete", data=data).status_code == 400
    assert session_exists(fake_redis, session_id(app, client))
    assert row(app) is not None


def test_deleting_ends_every_session_and_deletes_the_row_and_cached_copies(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    here, there, bob = app.test_client(), app.test_client(), app.test_client()
    fresh_sign_in(here, provider)
    fresh_sign_in(there, provider)
    fresh_sign_in(bob, provider, "bob")
    sids = [session_id(app, here), session_id(app, there)]

    answer = delete_account(here)

    assert answer.status_code == 303
    assert answer.headers["Location"] == "/account/deleted"
    assert "Your account has been deleted" in here.get("/account/deleted").get_data(as_text=True)
    assert not any(session_exists(fake_redis, sid) for sid in sids)
    assert there.get("/profile").headers["Location"].startswith("/login")
    assert list(user_state(fake_redis)) == [b"gone"]  # no identity, no profile: only the tombstone
    run_queued_jobs(app)
    assert row(app) is None
    with app.app_context():
        assert db.session.execute(select(DeletedUser.subject)).scalars().all() == ["alice"]
    assert row(app, "bob") is not None
    assert bob.get("/profile").status_code == 200


def test_an_old_authentication_must_be_renewed_first_and_the_session_is_kept(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    sign_in(client, provider, "alice", auth_time=int(time.time()) - 3600)
    answer = delete_account(client)
    assert answer.status_code == 303
    assert authorize_params(answer.headers["Location"])["max_age"] == "300"
    assert session_exists(fake_redis, session_id(app, client))
    assert row(app) is not None

    code = provider.approve(answer.headers["Location"], "alice", auth_time=int(time.time()))
    back = client.get(f"/auth/callback?{callback_query(answer.headers['Location'], code=code)}")
    assert back.headers["Location"] == "/account/delete", "back at the confirmation page, not deleted yet"
    assert "Your sign-in has been confirmed." in client.get("/account/delete").get_data(as_text=True)
    assert session_exists(fake_redis, session_id(app, client))
    assert delete_account(client).headers["Location"] == "/account/deleted"


def test_a_persistence_job_still_queued_for_the_user_does_not_bring_them_back(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    sign_in(client, provider, "alice", worker=False, auth_time=int(time.time()))
    queued = queued_records(app)
    assert len(queued) == 1  # the sign-in's job has not run yet
    delete_account(client)
    run_queued_jobs(app)  # the old job runs after the deletion (or is retried after it)
    assert row(app) is None
    assert list(user_state(fake_redis)) == [b"gone"]

    with app.app_context():
        from accounts.persistence import persist_user

        persist_user(queued[0])  # run once more, as a retry would
    assert row(app) is None
    assert list(user_state(fake_redis)) == [b"gone"]


@pytest.mark.parametrize("deletion_job_first", [True, False], ids=["deletion job first", "new sign-in's job first"])
def test_a_new_sign_in_after_deletion_starts_a_new_account(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis, deletion_job_first: bool
) -> None:
    fresh_sign_in(client, provider)
    token = signed_in_page_token(client)
    fields = {"display_name": "Old Name", "locale": "en", "timezone": "UTC", "website": "", "bio": ""}
    version = stored_session(app, fake_redis, session_id(app, client))["profile"]["version"]
    assert client.post("/profile", data={"csrf_token": token, "version": version, **fields}).status_code == 302
    run_queued_jobs(app)
    assert row(app).display_name == "Old Name"
    delete_account(client)
    sign_in(client, provider, "alice", worker=False, auth_time=int(time.time()))

    [deletion] = queued_jobs(app, "accounts.deletion.delete_user_row")
    [new_sign_in] = [job for job in queued_jobs(app, "accounts.persistence.persist_user") if job.id not in ran(app)]
    with app.app_context():
        for job in (deletion, new_sign_in) if deletion_job_first else (new_sign_in, deletion):
            job.perform()
            ran(app).add(job.id)
    run_queued_jobs(app)  # what is left (audit events)

    again = row(app)
    assert again is not None
    assert again.display_name != "Old Name"
    assert stored_session(app, fake_redis, session_id(app, client))["profile"]["display_name"] != "Old Name"
    assert b"gone" not in user_state(fake_redis)


def ran(app: Flask) -> set[str]:
    """Ids of the jobs run_queued_jobs has run in this app."""
    done: set[str] = app.extensions.setdefault("tests.jobs_run", set())
    return done


def test_deleting_is_recorded_in_the_audit_trail(app: Flask, client: FlaskClient, provider: MockProvider) -> None:
    fresh_sign_in(client, provider)
    delete_account(client)
    run_queued_jobs(app)
    result = app.test_cli_runner().invoke(args=["audit", "list", "--subject", "alice"])
    assert result.exit_code == 0
    assert [line.split()[1:3] for line in result.output.splitlines()] == [
        ["sign_in", "success"],
        ["account_deleted", "user"],
    ]


def test_the_tombstone_keeps_when_the_deletion_was_asked_for_not_when_the_worker_ran(
    app: Flask, client: FlaskClient, provider: MockProvider
) -> None:
    """The new account's activity starts at the deletion request, however late the worker runs the job."""
    fresh_sign_in(client, provider)
    asked_at = time.time()
    delete_account(client)
    [deletion] = queued_jobs(app, "accounts.deletion.delete_user_row")
    issuer, subject, _version, deleted_at = deletion.args
    assert (issuer, subject) == (ISSUER, "alice")
    assert asked_at <= datetime.fromisoformat(deleted_at).timestamp() <= time.time()
    run_queued_jobs(app)
    with app.app_context():
        stored = db.session.execute(select(DeletedUser.deleted_at)).scalar_one()
    stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)  # SQLite gives it back without its zone
    assert abs(stored.timestamp() - datetime.fromisoformat(deleted_at).timestamp()) < 0.001


def test_a_deletion_job_queued_before_it_carried_its_time_still_deletes(app: Flask, provider: MockProvider) -> None:
    """delete_user_row(issuer, subject, version), as queued before: the tombstone takes the worker's time."""
    client = app.test_client()
    fresh_sign_in(client, provider)
    run_queued_jobs(app)
    with app.app_context():
        delete_user_row(ISSUER, "alice", 2**62)
        assert db.session.execute(select(DeletedUser.subject)).scalars().all() == ["alice"]
    assert row(app) is None
