"""OIDC_<NAME>_TRUST_EMAIL: a first sign-in joins the account whose verified address it shares, and nothing else does.

alice signs in at corp with her address verified; partner's "alice-p" then signs in for the first time
with the same address. Both providers are trusted for e-mail unless a test says otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import signin.email_linking as email_linking
from extensions import db
from models.audit import AuditEvent
from models.user import User
from models.user_identity import UserIdentity
from sessions import keys
from signin.session import email_verified, identity_from, with_hook_changes
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, run_queued_jobs, session_id
from tests.unit.mock_provider import ISSUER, MockProvider
from tests.unit.signin.test_linking import identities_page
from tests.unit.signin.two_providers import PARTNER_ISSUER, several, sign_in_with

ALICE = keys.user_tag(ISSUER, "alice")
ADDRESS = "alice@example.test"
BOTH_TRUSTED = {"OIDC_CORP_TRUST_EMAIL": "true", "OIDC_PARTNER_TRUST_EMAIL": "true"}


def app_trusting(make_app: AppFactory, **trust: str) -> Flask:
    return make_app(**several(**trust))


@pytest.fixture
def app(make_app: AppFactory, partner: MockProvider) -> Flask:
    return app_trusting(make_app, **BOTH_TRUSTED)


def alice_at_corp(app: Flask, provider: MockProvider, *, verified: Any = True, subject: str = "alice") -> FlaskClient:
    """alice's account, created at corp with her address (verified or not); its row stored."""
    client = app.test_client()
    assert sign_in_with(client, "corp", provider, subject, email=ADDRESS, email_verified=verified).location == "/"
    return client


def partner_first_sign_in(app: Flask, partner: MockProvider, *, subject: str = "alice-p", **claims: Any) -> FlaskClient:
    client = app.test_client()
    sign_in_with(client, "partner", partner, subject, **{"email": ADDRESS, "email_verified": True, **claims})
    return client


def account_of(app: Flask, client: FlaskClient) -> str:
    return (session_id(app, client) or "").split(".")[0]


def test_a_verified_address_at_a_trusted_provider_joins_the_account_owning_it(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice_at_corp(app, provider)
    phone = partner_first_sign_in(app, partner)
    assert account_of(app, phone) == ALICE
    assert 'data-provider="partner"' in identities_page(phone)
    run_queued_jobs(app)
    with app.app_context():
        owner = select(User.id).where(User.subject == "alice").scalar_subquery()
        linked = db.session.execute(select(UserIdentity.subject).where(UserIdentity.user_id == owner)).scalars()
        assert sorted(linked) == ["alice", "alice-p"]
        assert db.session.execute(select(User).where(User.issuer == PARTNER_ISSUER)).first() is None
        event = db.session.execute(select(AuditEvent).where(AuditEvent.kind == "identity_linked")).scalar_one()
        assert (event.outcome, event.subject, event.detail) == ("email", "alice", "partner")
    again = partner_first_sign_in(app, partner)
    assert account_of(app, again) == ALICE


@pytest.mark.parametrize(
    ("alice_verified", "claims"),
    [
        (True, {"email_verified": False}),  # partner does not vouch for the address
        (True, {"email_verified": "true"}),  # a string is not a verification
        (True, {"email_verified": None}),
        (False, {}),  # alice's address was never verified
        (True, {"email": "Alice@example.test"}),  # matched exactly as stored, never loosely
    ],
)
def test_anything_short_of_both_addresses_verified_makes_a_new_account(
    app: Flask, provider: MockProvider, partner: MockProvider, alice_verified: bool, claims: dict[str, Any]
) -> None:
    alice_at_corp(app, provider, verified=alice_verified)
    mallory = partner_first_sign_in(app, partner, subject="mallory-p", **claims)
    assert account_of(app, mallory) == keys.user_tag(PARTNER_ISSUER, "mallory-p")
    assert 'data-provider="corp"' not in identities_page(mallory)


@pytest.mark.parametrize(
    "trust",
    [
        {"OIDC_PARTNER_TRUST_EMAIL": "true"},  # corp vouched for alice's address, but corp is not trusted for it
        {"OIDC_CORP_TRUST_EMAIL": "true"},  # partner is not trusted for the address it vouches for
        {},
    ],
)
def test_both_providers_must_be_trusted_for_e_mail(
    make_app: AppFactory, provider: MockProvider, partner: MockProvider, trust: dict[str, str]
) -> None:
    app = app_trusting(make_app, **trust)
    alice_at_corp(app, provider)
    mallory = partner_first_sign_in(app, partner, subject="mallory-p")
    assert account_of(app, mallory) == keys.user_tag(PARTNER_ISSUER, "mallory-p")


def test_two_accounts_with_the_address_are_not_guessed_between(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice_at_corp(app, provider)
    alice_at_corp(app, provider, subject="alice-again")
    phone = partner_first_sign_in(app, partner)
    assert account_of(app, phone) == keys.user_tag(PARTNER_ISSUER, "alice-p")


def test_an_identity_with_an_account_of_its_own_never_joins_another(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice_at_corp(app, provider)
    partner_first_sign_in(app, partner, subject="carol-p", email_verified=False)  # an account of its own
    later = partner_first_sign_in(app, partner, subject="carol-p")  # now verified: still its own
    assert account_of(app, later) == keys.user_tag(PARTNER_ISSUER, "carol-p")
    fake_redis.flushall()  # its own account is known to the database only
    after_loss = partner_first_sign_in(app, partner, subject="carol-p")
    assert account_of(app, after_loss) == keys.user_tag(PARTNER_ISSUER, "carol-p")


def test_an_account_with_an_identity_at_that_provider_already_gets_no_second_one(
    app: Flask, provider: MockProvider, partner: MockProvider
) -> None:
    alice_at_corp(app, provider)
    assert account_of(app, partner_first_sign_in(app, partner, subject="alice-p1")) == ALICE
    second = partner_first_sign_in(app, partner, subject="alice-p2")
    assert account_of(app, second) == keys.user_tag(PARTNER_ISSUER, "alice-p2")


def test_an_account_whose_state_expired_from_redis_is_joined_with_its_saved_profile(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice = alice_at_corp(app, provider)
    run_queued_jobs(app)
    alice.post("/logout", data={})
    fake_redis.delete(keys.user_key(ALICE))  # nobody signed in for USER_STATE_TTL
    phone = partner_first_sign_in(app, partner)
    assert account_of(app, phone) == ALICE
    assert 'value="Alice"' in phone.get("/profile").get_data(as_text=True)


def test_a_disabled_account_owning_the_address_refuses_the_sign_in_and_links_nothing(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    alice_at_corp(app, provider)
    with app.app_context():
        db.session.execute(User.__table__.update().values(disabled=True))
        db.session.commit()
    refused = app.test_client()
    answer = sign_in_with(refused, "partner", partner, "alice-p", email=ADDRESS, email_verified=True)
    assert answer.location == "/auth/failed?reason=disabled"
    assert not fake_redis.exists(keys.identity_link_key(PARTNER_ISSUER, "alice-p"))


def test_when_the_database_cannot_say_whose_the_address_is_the_sign_in_is_refused(
    app: Flask,
    provider: MockProvider,
    partner: MockProvider,
    fake_redis: RecordingRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice_at_corp(app, provider)

    def database_down(*_: Any) -> None:
        raise OperationalError("SELECT users", {}, Exception("the database is down"))

    monkeypatch.setattr(email_linking, "verified_email_owners", database_down)
    refused = app.test_client()
    answer = sign_in_with(refused, "partner", partner, "alice-p", email=ADDRESS, email_verified=True)
    assert answer.location == "/auth/failed?reason=email_link_unavailable"
    page = refused.get(answer.location).get_data(as_text=True)
    assert "Signing in is not possible right now" in page
    assert not fake_redis.exists(keys.user_key(keys.user_tag(PARTNER_ISSUER, "alice-p")))
    assert not fake_redis.exists(keys.identity_link_key(PARTNER_ISSUER, "alice-p"))


def test_a_sign_in_hook_changing_the_address_drops_its_verification() -> None:
    claims = {"iss": ISSUER, "sub": "alice", "email": ADDRESS, "email_verified": True}
    verified = identity_from(claims)
    assert email_verified(claims, verified)
    assert not email_verified(claims, with_hook_changes(verified, {"email": "other@example.test"}))
    assert email_verified(claims, with_hook_changes(verified, {"email": ADDRESS}))
    assert not email_verified({**claims, "email_verified": "true"}, verified)


def test_the_verification_is_kept_in_the_database_only(
    app: Flask, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """users.email_verified follows the provider's latest sign-in; the user's Redis state holds nothing of it."""
    alice_at_corp(app, provider)
    with app.app_context():
        assert db.session.execute(select(User.email_verified)).scalar_one() is True
    assert b"email_verified" not in b"".join(fake_redis.hvals(keys.user_key(ALICE)))
    alice_at_corp(app, provider, verified=False)  # the provider no longer says so
    with app.app_context():
        assert db.session.execute(select(User.email_verified)).scalar_one() is None
