"""Unlinking the sign-in that created an account: the account moves to a new name (accounts/moves.py).

alice signs in at corp (her account's own identity) and links "alice-p" at partner; then, signed in
with partner, she unlinks corp.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import accounts.moves as moves
from accounts.persistence import persist_user
from extensions import db
from jobs.failures import PermanentJobFailure
from jobs.queues import job_queue
from models.audit import AuditEvent
from models.deleted_user import DeletedUser
from models.user import User
from models.user_identity import UserIdentity
from sessions import keys
from sessions.account_moves import NoLinkLeft, move_out
from sessions.identity_links import LastSignIn, account_links, remove_link
from tests.unit.helpers import RecordingRedis, run_queued_jobs, session_exists, session_id, signed_in_page_token
from tests.unit.mock_provider import ISSUER, MockProvider
from tests.unit.signin.test_linking import fresh_alice, identities_page, link_partner, press
from tests.unit.signin.two_providers import PARTNER_ISSUER, finish, sign_in_with, start
from users.tags import MOVED_ACCOUNT_ISSUER

ALICE = keys.user_tag(ISSUER, "alice")


@pytest.fixture
def app(two_provider_app: Flask) -> Flask:
    return two_provider_app


def save_name(client: FlaskClient, name: str) -> None:
    token = signed_in_page_token(client)
    form = {"csrf_token": token, "display_name": name, "locale": "en", "timezone": "UTC"}
    assert client.post("/profile", data=form).status_code == 302


def linked_alice(app: Flask, provider: MockProvider, partner: MockProvider) -> tuple[FlaskClient, FlaskClient]:
    """alice at corp with a saved name and partner linked; and a fresh partner session of her account."""
    alice = fresh_alice(app, provider)
    save_name(alice, "Alice Kept")
    assert link_partner(alice, partner).status_code == 303
    phone = app.test_client()
    sign_in_with(phone, "partner", partner, "alice-p", auth_time=int(time.time()))
    assert (session_id(app, phone) or "").split(".")[0] == ALICE
    return alice, phone


def unlink_corp(phone: FlaskClient) -> Any:
    return press(phone, "/account/identities/corp/unlink")


def the_users() -> list[tuple[str, str, str]]:
    return [(row.issuer, row.subject, row.display_name) for row in db.session.execute(select(User)).scalars()]


def identities_of(issuer: str) -> list[str]:
    owner = select(User.id).where(User.issuer == issuer).scalar_subquery()
    return sorted(db.session.execute(select(UserIdentity.subject).where(UserIdentity.user_id == owner)).scalars())


def test_the_first_sign_in_offers_an_unlink_once_another_is_linked(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    _, phone = linked_alice(app, provider, partner)
    page = identities_page(phone)
    assert 'data-testid="unlink-corp"' in page and "every session of it ends" in page
    assert 'data-testid="unlink-partner"' not in page  # the session's own sign-in


def test_unlinking_it_keeps_the_account_under_a_new_name_and_the_old_one_starts_afresh(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice, phone = linked_alice(app, provider, partner)
    run_queued_jobs(app)
    answer = unlink_corp(phone)
    assert answer.status_code == 303 and answer.headers["Location"] == "/account/moved"
    assert "You are signed out everywhere" in phone.get("/account/moved").get_data(as_text=True)
    assert not session_exists(fake_redis, session_id(app, alice))
    assert not session_exists(fake_redis, session_id(app, phone))
    run_queued_jobs(app)

    with app.app_context():
        (moved,) = [user for user in the_users() if user[0] == MOVED_ACCOUNT_ISSUER]
        assert moved[2] == "Alice Kept"
        assert identities_of(MOVED_ACCOUNT_ISSUER) == ["alice-p"]
        assert db.session.execute(select(User).where(User.issuer == ISSUER)).first() is None
        assert db.session.execute(select(DeletedUser).where(DeletedUser.issuer == ISSUER)).first() is not None
        # The account's trail moved with it, the unlink included.
        kinds = db.session.execute(select(AuditEvent.kind).where(AuditEvent.issuer == MOVED_ACCOUNT_ISSUER))
        assert "identity_unlinked" in set(kinds.scalars())
        assert db.session.execute(select(AuditEvent).where(AuditEvent.issuer == ISSUER)).first() is None

    # partner opens the account, its profile kept; it is now the account's only sign-in.
    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    assert (session_id(app, again) or "").split(".")[0] == keys.user_tag(MOVED_ACCOUNT_ISSUER, moved[1])
    assert 'value="Alice Kept"' in again.get("/profile").get_data(as_text=True)
    page = identities_page(again)
    assert 'data-provider="partner"' in page and 'data-provider="corp"' not in page
    assert "created this account" not in page and 'data-testid="unlink-partner"' not in page

    # corp's alice is a new account, with nothing of the old one.
    fresh = app.test_client()
    sign_in_with(fresh, "corp", provider, "alice")
    assert (session_id(app, fresh) or "").split(".")[0] == ALICE
    assert 'value="Alice Kept"' not in fresh.get("/profile").get_data(as_text=True)
    assert 'data-provider="partner"' not in identities_page(fresh)
    run_queued_jobs(app)
    with app.app_context():
        names = sorted(user[2] for user in the_users())
        assert len(names) == 2 and names.count("Alice Kept") == 1
        assert identities_of(ISSUER) == ["alice"]


def test_users_list_shows_the_moved_account_with_its_linked_sign_in_only(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    _, phone = linked_alice(app, provider, partner)
    unlink_corp(phone)
    run_queued_jobs(app)
    listed = app.test_cli_runner().invoke(args=["users", "list", "--json"])
    (user,) = [json.loads(line) for line in listed.output.splitlines()]
    assert user["issuer"] == MOVED_ACCOUNT_ISSUER and user["display_name"] == "Alice Kept"
    assert user["identities"] == [{"provider": "partner", "issuer": PARTNER_ISSUER, "subject": "alice-p"}]
    text = app.test_cli_runner().invoke(args=["users", "list"]).output
    assert MOVED_ACCOUNT_ISSUER in text and "linked: partner" in text
    disabled = app.test_cli_runner().invoke(args=["users", "disable", "alice-p", "--issuer", PARTNER_ISSUER])
    assert disabled.exit_code == 0, disabled.output
    refused = app.test_client()
    assert sign_in_with(refused, "partner", partner, "alice-p").location == "/auth/failed?reason=disabled"


def test_the_move_needs_a_recent_sign_in_and_the_csrf_token(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    _, phone = linked_alice(app, provider, partner)
    assert phone.post("/account/identities/corp/unlink").status_code == 400  # no CSRF token
    with app.test_request_context():
        assert account_links(ALICE) != []
    stale = app.test_client()
    sign_in_with(stale, "partner", partner, "alice-p", auth_time=int(time.time()) - 3600)
    asked = unlink_corp(stale)
    # Sent to authenticate at partner again first; nothing moved meanwhile.
    assert asked.status_code == 303 and asked.headers["Location"].startswith(f"{PARTNER_ISSUER}/authorize?")
    assert "max_age=300" in asked.headers["Location"]
    assert session_exists(fake_redis, session_id(app, phone))


def test_an_account_with_no_link_is_never_moved(app: Flask, provider: MockProvider, fake_redis: RecordingRedis) -> None:
    fresh_alice(app, provider)
    before = fake_redis.hgetall(keys.user_key(ALICE))
    with app.test_request_context(), pytest.raises(NoLinkLeft):
        move_out(ALICE)
    assert fake_redis.hgetall(keys.user_key(ALICE)) == before


def test_the_moved_accounts_last_sign_in_cannot_be_unlinked(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    _, phone = linked_alice(app, provider, partner)
    unlink_corp(phone)
    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    account = (session_id(app, again) or "").split(".")[0]
    with app.test_request_context():
        (link,) = account_links(account)
        with pytest.raises(LastSignIn):
            remove_link(account, link)
        assert account_links(account) == [link]


def test_a_save_from_a_form_shown_before_the_move_is_refused_and_changes_nothing(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice, phone = linked_alice(app, provider, partner)
    token = signed_in_page_token(alice)
    unlink_corp(phone)
    form = {"csrf_token": token, "display_name": "Too Late", "locale": "en", "timezone": "UTC"}
    answer = alice.post("/profile", data=form)
    assert answer.status_code == 400  # its session ended with the move, and the form's CSRF token with it
    run_queued_jobs(app)
    with app.app_context():
        assert sorted(user[2] for user in the_users()) == ["Alice Kept"]


def test_the_move_job_before_the_accounts_first_row_leaves_one_account_and_late_jobs_change_nothing(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    """The worker was down all along: the old name's persistence and link jobs run after the move's."""
    alice = fresh_alice(app, provider)
    with app.app_context():
        job_queue().empty()  # as if alice's first jobs were still on their way
    save_name(alice, "Alice Kept")
    link_partner(alice, partner)
    phone = app.test_client()
    # Signed in by hand: sign_in_with would run the queued jobs.
    url = start(phone, "partner")
    finish(phone, "partner", url, partner.approve(url, "alice-p", auth_time=int(time.time())))
    unlink_corp(phone)
    with app.app_context():
        jobs = {job.func_name.rsplit(".", 1)[-1]: job for job in job_queue().get_jobs()}
        jobs["move_account"].perform()
        for name, job in jobs.items():
            if name == "link_identity":
                with pytest.raises(PermanentJobFailure):  # its account was buried: dropped
                    job.perform()
            elif name != "move_account":
                job.perform()
        jobs["move_account"].perform()  # run twice: nothing more changes
        assert [(user[0], user[2]) for user in the_users()] == [(MOVED_ACCOUNT_ISSUER, "Alice Kept")]
        assert identities_of(MOVED_ACCOUNT_ISSUER) == ["alice-p"]


def test_after_the_store_lost_its_data_partner_is_folded_back_into_the_moved_account(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    _, phone = linked_alice(app, provider, partner)
    unlink_corp(phone)
    run_queued_jobs(app)
    fake_redis.flushall()
    stray = app.test_client()
    sign_in_with(stray, "partner", partner, "alice-p")  # an account of its own; the worker folds it back
    assert not session_exists(fake_redis, session_id(app, stray))
    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    account = (session_id(app, again) or "").split(".")[0]
    assert 'value="Alice Kept"' in again.get("/profile").get_data(as_text=True)
    with app.test_request_context():
        (link,) = account_links(account)
        with pytest.raises(LastSignIn):  # restored as an account with no identity of its own
            remove_link(account, link)
    corp = app.test_client()
    sign_in_with(corp, "corp", provider, "alice")  # the old name's tombstone is gone with the data: still afresh
    assert 'value="Alice Kept"' not in corp.get("/profile").get_data(as_text=True)
    run_queued_jobs(app)
    with app.app_context():
        names = sorted(user[2] for user in the_users())
        assert len(names) == 2 and names.count("Alice Kept") == 1


def test_when_the_move_cannot_be_kept_anywhere_the_account_is_put_back(
    app: Flask,
    provider: MockProvider,
    partner: MockProvider,
    fake_redis: RecordingRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, phone = linked_alice(app, provider, partner)

    def nowhere(*_: Any) -> None:
        raise OperationalError("INSERT INTO job_outbox", {}, Exception("the database is down"))

    monkeypatch.setattr(moves, "enqueue", nowhere)
    assert unlink_corp(phone).status_code == 503
    monkeypatch.undo()
    run_queued_jobs(app)
    with app.app_context():  # nothing says it was unlinked
        assert db.session.execute(select(AuditEvent).where(AuditEvent.kind == "identity_unlinked")).first() is None
    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    assert (session_id(app, again) or "").split(".")[0] == ALICE  # still the account, under its old name
    assert 'value="Alice Kept"' in again.get("/profile").get_data(as_text=True)
    assert 'data-provider="corp"' in identities_page(again)


def test_with_the_session_store_down_the_move_answers_503_and_changes_nothing(
    app: Flask,
    provider: MockProvider,
    partner: MockProvider,
    fake_redis: RecordingRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, phone = linked_alice(app, provider, partner)
    token = signed_in_page_token(phone, "/account/identities")

    def store_down(*_: Any) -> None:
        raise RedisConnectionError("the session store is down")

    monkeypatch.setattr(moves, "move_out", store_down)
    answer = phone.post("/account/identities/corp/unlink", data={"csrf_token": token})
    assert answer.status_code == 503
    assert session_exists(fake_redis, session_id(app, alice)) and session_exists(fake_redis, session_id(app, phone))
    with app.app_context():
        assert [job.func_name for job in job_queue().get_jobs() if job.func_name.endswith("move_account")] == []


@pytest.mark.parametrize(
    "change",
    [
        {"issuer": ISSUER},  # the new name must be a moved account's
        {"old_issuer": MOVED_ACCOUNT_ISSUER},
        {"links": []},
        {"links": [{"provider": "partner", "issuer": PARTNER_ISSUER}]},
        {"moved_at": 12},
        {"moved_version": "soon"},
    ],
)
def test_a_malformed_move_record_is_given_up_on(app: Flask, change: dict[str, Any]) -> None:
    record = {
        "old_issuer": ISSUER,
        "old_subject": "alice",
        "issuer": MOVED_ACCOUNT_ISSUER,
        "subject": "x",
        "identity_version": 1,
        "profile_version": 1,
        "moved_version": 2,
        "moved_at": "2026-12-07T00:00:00+00:00",
        "links": [
            {"provider": "partner", "issuer": PARTNER_ISSUER, "subject": "p", "linked_at": "2026-12-07T00:00:00+00:00"}
        ],
    }
    with app.app_context(), pytest.raises(PermanentJobFailure):
        moves.move_account({**record, **change})


def test_an_edit_refused_by_the_move_whose_job_ran_first_is_not_carried_to_the_new_name(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    """A save that raced the move reserved its version and queued its job, then found the account moved: it was
    told nothing was saved. Its job, run before the move's, wrote the old row; the move takes the snapshot."""
    _, phone = linked_alice(app, provider, partner)
    run_queued_jobs(app)
    unlink_corp(phone)
    with app.app_context():
        (move,) = [job for job in job_queue().get_jobs() if job.func_name.endswith("move_account")]
        record = move.args[0]
        refused = {
            **{key: value for key, value in record.items() if key in ("email", "name", "picture", "locale")},
            "issuer": ISSUER,
            "subject": "alice",
            "identity_version": 0,
            "display_name": "Refused Ada",
            "profile_version": record["moved_version"] - 1,
        }
        persist_user(refused)
        assert [user[2] for user in the_users()] == ["Refused Ada"]
    run_queued_jobs(app)
    with app.app_context():
        assert [(user[0], user[2]) for user in the_users()] == [(MOVED_ACCOUNT_ISSUER, "Alice Kept")]
    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    assert 'value="Alice Kept"' in again.get("/profile").get_data(as_text=True)
