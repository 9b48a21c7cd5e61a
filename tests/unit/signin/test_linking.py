"""Account linking: /account/identities, linking another provider's sign-in, signing in with it, unlinking it.

alice signs in at corp (her account's own identity); "alice-p" is her identity at partner.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

import signin.session as signing_in
from extensions import db
from jobs.failures import PermanentJobFailure
from jobs.queues import job_queue
from models.user import User
from models.user_identity import UserIdentity
from sessions import keys
from sessions.identity_links import IdentityTaken, add_link, linked_elsewhere, new_link
from tests.unit.helpers import (
    RecordingRedis,
    csrf_token,
    run_queued_jobs,
    session_exists,
    session_id,
    signed_in_page_token,
)
from tests.unit.mock_provider import ISSUER, MockProvider, authorize_params
from tests.unit.signin.two_providers import PARTNER_ISSUER, finish, logout_token, post_logout, sign_in_with, start

ALICE = keys.user_tag(ISSUER, "alice")


@pytest.fixture
def app(two_provider_app: Flask) -> Flask:
    return two_provider_app


def fresh_alice(app: Flask, provider: MockProvider) -> FlaskClient:
    """alice, signed in at corp just now (a recent authentication, as linking needs)."""
    client = app.test_client()
    assert sign_in_with(client, "corp", provider, "alice", auth_time=int(time.time())).location == "/"
    return client


def press(client: FlaskClient, path: str) -> TestResponse:
    """Press a form's button on /account/identities (with the page's CSRF token)."""
    token = signed_in_page_token(client, "/account/identities")
    return client.post(path, data={"csrf_token": token})


def link_partner(client: FlaskClient, partner: MockProvider, subject: str = "alice-p") -> TestResponse:
    """Link partner: the button, then a sign-in at partner as `subject`; the callback's answer."""
    asked = press(client, "/account/identities/link/partner")
    assert asked.status_code == 303, asked.get_data(as_text=True)
    url = asked.headers["Location"]
    assert url.startswith(f"{PARTNER_ISSUER}/authorize?")
    assert authorize_params(url)["prompt"] == "login"  # the identity linked is the one authenticated now
    return finish(client, "partner", url, partner.approve(url, subject))


def identities_page(client: FlaskClient) -> str:
    page = client.get("/account/identities")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_the_page_lists_the_accounts_own_sign_in_and_offers_the_others(app: Flask, provider: MockProvider) -> None:
    page = identities_page(fresh_alice(app, provider))
    assert 'data-provider="corp"' in page and "created this account" in page
    assert 'data-testid="link-partner"' in page and 'data-testid="link-corp"' not in page
    assert 'data-testid="unlink-corp"' not in page  # its only sign-in: nothing else would be left to sign in with


def test_linking_then_signing_in_with_the_linked_identity_reaches_the_same_account(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice = fresh_alice(app, provider)
    linked = link_partner(alice, partner)
    assert linked.status_code == 303 and linked.headers["Location"] == "/account/identities"
    page = identities_page(alice)
    assert "is now linked" in page and 'data-provider="partner"' in page and 'data-testid="unlink-partner"' in page
    run_queued_jobs(app)
    with app.app_context():
        rows = db.session.execute(select(UserIdentity.issuer, UserIdentity.subject)).all()
    assert sorted(rows) == [(ISSUER, "alice"), (PARTNER_ISSUER, "alice-p")]

    # Another browser signs in with partner: alice's account, her profile, a session under her id.
    phone = app.test_client()
    assert sign_in_with(phone, "partner", partner, "alice-p").location == "/"
    phone_sid = session_id(app, phone)
    assert phone_sid and phone_sid.split(".")[0] == ALICE
    token = signed_in_page_token(alice)
    form = {"csrf_token": token, "display_name": "Alice Linked", "locale": "en", "timezone": "UTC"}
    assert alice.post("/profile", data=form).status_code == 302
    assert 'value="Alice Linked"' in phone.get("/profile").get_data(as_text=True)
    sessions_page = alice.get("/sessions").get_data(as_text=True)
    assert 'data-testid="session-provider">Partner<' in sessions_page
    run_queued_jobs(app)
    with app.app_context():
        assert [row.subject for row in db.session.execute(select(User)).scalars()] == ["alice"]  # still one user


def test_an_identity_with_an_account_of_its_own_is_refused_never_moved(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    """bob signed in with partner before: his identity there is his account; alice cannot take it."""
    bob = app.test_client()
    sign_in_with(bob, "partner", partner, "bob-p")
    alice = fresh_alice(app, provider)
    refused = link_partner(alice, partner, "bob-p")
    assert refused.headers["Location"] == "/auth/failed?reason=link_taken"
    assert "already belongs to another account" in alice.get(refused.headers["Location"]).get_data(as_text=True)
    assert session_exists(fake_redis, session_id(app, bob))
    again = app.test_client()
    sign_in_with(again, "partner", partner, "bob-p")
    assert (session_id(app, again) or "").split(".")[0] == keys.user_tag(PARTNER_ISSUER, "bob-p")  # still his
    assert 'data-provider="partner"' not in identities_page(alice)


def test_an_identity_known_only_to_the_database_is_refused(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    """bob's account is in the database, its Redis state long expired: it is still his."""
    bob = app.test_client()
    sign_in_with(bob, "partner", partner, "bob-p")
    run_queued_jobs(app)
    fake_redis.delete(keys.user_key(keys.user_tag(PARTNER_ISSUER, "bob-p")))
    alice = fresh_alice(app, provider)
    assert link_partner(alice, partner, "bob-p").headers["Location"] == "/auth/failed?reason=link_taken"


def test_linking_needs_a_recent_sign_in(app: Flask, provider: MockProvider) -> None:
    """An hour-old authentication: the button first sends alice to corp to authenticate again."""
    alice = app.test_client()
    sign_in_with(alice, "corp", provider, "alice", auth_time=int(time.time()) - 3600)
    asked = press(alice, "/account/identities/link/partner")
    assert asked.status_code == 303 and asked.headers["Location"].startswith(f"{ISSUER}/authorize?")
    assert authorize_params(asked.headers["Location"])["max_age"] == "300"


@pytest.mark.parametrize("path", ["/account/identities/link/partner", "/account/identities/partner/unlink"])
def test_link_and_unlink_without_the_csrf_token_change_nothing(app: Flask, provider: MockProvider, path: str) -> None:
    alice = fresh_alice(app, provider)
    assert alice.post(path).status_code == 400


def test_linking_a_provider_that_is_not_configured_is_a_404(app: Flask, provider: MockProvider) -> None:
    assert press(fresh_alice(app, provider), "/account/identities/link/nope").status_code == 404


def test_unlinking_ends_the_sessions_it_signed_in_and_the_identity_stands_alone_again(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice = fresh_alice(app, provider)
    link_partner(alice, partner)
    phone = app.test_client()
    sign_in_with(phone, "partner", partner, "alice-p")
    phone_sid = session_id(app, phone)

    answer = press(alice, "/account/identities/partner/unlink")

    assert answer.status_code == 303
    assert "1 session(s) signed in with it ended" in identities_page(alice)
    assert not session_exists(fake_redis, phone_sid)
    assert session_exists(fake_redis, session_id(app, alice))
    run_queued_jobs(app)
    with app.app_context():
        assert db.session.execute(select(UserIdentity.subject)).scalars().all() == ["alice"]
    later = app.test_client()
    sign_in_with(later, "partner", partner, "alice-p")
    assert (session_id(app, later) or "").split(".")[0] == keys.user_tag(PARTNER_ISSUER, "alice-p")


def test_a_link_job_retried_after_its_unlink_puts_no_link_back(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice = fresh_alice(app, provider)
    run_queued_jobs(app)  # alice's users row
    link_partner(alice, partner)
    assert press(alice, "/account/identities/partner/unlink").status_code == 303
    # The worker meets the unlink first: the link's job failed once (say, the database was down) and is retried.
    with app.app_context():
        jobs = {job.func_name.rsplit(".", 1)[-1]: job for job in job_queue().get_jobs()}
        jobs["unlink_identity"].perform()
        with pytest.raises(PermanentJobFailure):
            jobs["link_identity"].perform()
        assert db.session.execute(select(UserIdentity.subject)).scalars().all() == ["alice"]


def test_the_sessions_own_sign_in_cannot_be_unlinked(app: Flask, provider: MockProvider, partner: MockProvider) -> None:
    alice = fresh_alice(app, provider)
    link_partner(alice, partner)
    phone = app.test_client()
    sign_in_with(phone, "partner", partner, "alice-p", auth_time=int(time.time()))
    # Unlinking the account's own sign-in (corp) from the partner session moves the account instead:
    # tests/unit/signin/test_unlinking_the_first_sign_in.py. The session's own sign-in is refused with its reason.
    refused = press(phone, "/account/identities/partner/unlink")
    assert refused.status_code == 400
    assert "You are signed in with that sign-in now" in refused.get_data(as_text=True)
    assert 'data-provider="partner"' in identities_page(phone)


def test_a_logout_token_from_partner_ends_only_the_accounts_partner_sessions(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice = fresh_alice(app, provider)
    link_partner(alice, partner)
    phone = app.test_client()
    sign_in_with(phone, "partner", partner, "alice-p")
    answer = post_logout(app.test_client(), logout_token(partner, sub="alice-p", iat=int(time.time()) + 1))
    assert answer.status_code == 200
    assert not session_exists(fake_redis, session_id(app, phone))
    assert session_exists(fake_redis, session_id(app, alice))


def test_after_the_account_is_deleted_the_linked_identity_starts_a_new_account(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice = fresh_alice(app, provider)
    link_partner(alice, partner)
    token = signed_in_page_token(alice, "/account/delete")
    assert alice.post("/account/delete", data={"csrf_token": token}).status_code == 303
    assert not fake_redis.exists(keys.identity_link_key(PARTNER_ISSUER, "alice-p"))
    later = app.test_client()
    sign_in_with(later, "partner", partner, "alice-p")
    assert (session_id(app, later) or "").split(".")[0] == keys.user_tag(PARTNER_ISSUER, "alice-p")


def test_a_link_and_a_first_sign_in_of_the_same_identity_never_both_win(
    app: Flask,
    provider: MockProvider,
    partner: MockProvider,
    fake_redis: RecordingRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Either order of the two writes: the identity ends in exactly one account."""
    fresh_alice(app, provider)
    # The first sign-in wrote its own account's state first: the link sees it and is refused.
    carol = app.test_client()
    sign_in_with(carol, "partner", partner, "carol-p")
    with app.test_request_context("/"):
        with pytest.raises(IdentityTaken):
            add_link(ALICE, "corp", new_link("partner", PARTNER_ISSUER, "carol-p"))
        assert not linked_elsewhere(PARTNER_ISSUER, "carol-p")
    # The link wrote first: the first sign-in sees it afterwards, ends its session and fails.
    with app.test_request_context("/"):
        assert add_link(ALICE, "corp", new_link("partner", PARTNER_ISSUER, "dave-p"))
    dave = app.test_client()
    url = start(dave, "partner")
    code = partner.approve(url, "dave-p")
    fake_redis.delete(keys.identity_link_key(PARTNER_ISSUER, "dave-p"))  # read before the link was there ...
    original = signing_in.start_account_session

    def then_link(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        fake_redis.set(keys.identity_link_key(PARTNER_ISSUER, "dave-p"), ALICE)  # ... and written before the check

    monkeypatch.setattr(signing_in, "start_account_session", then_link)
    stale_read = finish(dave, "partner", url, code)
    assert stale_read.headers["Location"] == "/auth/failed?reason=failed"
    assert session_id(app, dave) is None or not session_exists(fake_redis, session_id(app, dave))


def test_partners_answer_to_a_link_delivered_at_corps_callback_is_refused(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice = fresh_alice(app, provider)
    asked = press(alice, "/account/identities/link/partner")
    url = asked.headers["Location"]
    refused = finish(alice, "corp", url, partner.approve(url, "alice-p"))
    assert refused.headers["Location"] == "/auth/failed?reason=failed"
    assert 'data-provider="partner"' not in identities_page(alice)
    assert csrf_token(identities_page(alice))


@pytest.mark.parametrize("verified", [True, False])
def test_the_same_e_mail_address_at_another_provider_makes_a_new_account(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis, verified: bool
) -> None:
    """Never linked by e-mail: partner vouching for alice's address (verified or not) opens nothing of hers."""
    alice = fresh_alice(app, provider)
    mallory = app.test_client()
    sign_in_with(mallory, "partner", partner, "mallory-p", email="alice@example.test", email_verified=verified)
    assert (session_id(app, mallory) or "").split(".")[0] == keys.user_tag(PARTNER_ISSUER, "mallory-p")
    assert "Alice" not in mallory.get("/profile").get_data(as_text=True)
    assert 'data-provider="partner"' not in identities_page(alice)


def test_a_link_left_behind_by_a_deletion_or_unlink_in_flight_leads_nowhere(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    """The link was read just before the account stopped listing it: sign_in.lua finds no link field, the
    sign-in makes the identity's own account instead, and the stale link is dropped."""
    alice = fresh_alice(app, provider)
    link_partner(alice, partner)
    token = signed_in_page_token(alice, "/account/delete")
    assert alice.post("/account/delete", data={"csrf_token": token}).status_code == 303
    fake_redis.set(keys.identity_link_key(PARTNER_ISSUER, "alice-p"), ALICE)  # as a sign-in in flight read it
    later = app.test_client()
    assert sign_in_with(later, "partner", partner, "alice-p").location == "/"
    assert (session_id(app, later) or "").split(".")[0] == keys.user_tag(PARTNER_ISSUER, "alice-p")
    assert not fake_redis.exists(keys.identity_link_key(PARTNER_ISSUER, "alice-p"))
    assert not fake_redis.exists(f"gh:{{{ALICE}}}:x")  # nothing of the deleted account came back


def test_after_the_store_lost_its_data_a_linked_identity_is_folded_back_into_its_account(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Redis restarts empty: partner's sign-in cannot know of the link and opens an account of its own. The
    worker stores no such account, ends that session and puts the link back (with the account's state), so
    the next sign-in with partner opens alice's account, her saved profile included."""
    alice = fresh_alice(app, provider)
    token = signed_in_page_token(alice)
    form = {"csrf_token": token, "display_name": "Alice Saved", "locale": "en", "timezone": "UTC"}
    assert alice.post("/profile", data=form).status_code == 302
    link_partner(alice, partner)
    run_queued_jobs(app)
    fake_redis.flushall()

    stray = app.test_client()
    sign_in_with(stray, "partner", partner, "alice-p")  # the worker runs right after (sign_in_with)
    assert not session_exists(fake_redis, session_id(app, stray))
    with app.app_context():
        assert [row.subject for row in db.session.execute(select(User)).scalars()] == ["alice"]

    again = app.test_client()
    sign_in_with(again, "partner", partner, "alice-p")
    assert (session_id(app, again) or "").split(".")[0] == ALICE
    assert 'value="Alice Saved"' in again.get("/profile").get_data(as_text=True)
    assert 'data-provider="partner"' in identities_page(again)
