"""Several providers at once (OIDC_PROVIDERS): one button each, a callback each, and answers that never cross.

`corp` is the unit tests' usual mock provider; `partner` is a second one with its own issuer,
client id and signing key, served by the same `responses` mock.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from sessions import keys
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, session_exists, session_id
from tests.unit.mock_provider import (
    ISSUER,
    MockProvider,
    authorize_params,
)
from tests.unit.signin.two_providers import (
    ENTRA_TEMPLATE,
    PARTNER_CLIENT_ID,
    PARTNER_ISSUER,
    TENANT_A,
    TENANT_B,
    finish,
    logout_token,
    post_logout,
    several,
    sign_in_with,
    start,
)


@pytest.fixture
def app(two_provider_app: Flask) -> Flask:
    return two_provider_app


def test_login_shows_one_button_per_provider(client: FlaskClient) -> None:
    page = client.get("/login?next=/profile")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Continue with Corp SSO" in text and "Continue with Partner" in text
    assert 'href="/login/corp?next=/profile"' in text and 'href="/login/partner?next=/profile"' in text


def test_each_provider_has_its_own_callback_as_redirect_uri(client: FlaskClient, partner: MockProvider) -> None:
    corp_url, partner_url = start(client, "corp"), start(client, "partner")
    assert corp_url.startswith(f"{ISSUER}/authorize?") and partner_url.startswith(f"{PARTNER_ISSUER}/authorize?")
    assert urlsplit(authorize_params(corp_url)["redirect_uri"]).path == "/auth/callback/corp"
    assert urlsplit(authorize_params(partner_url)["redirect_uri"]).path == "/auth/callback/partner"
    assert authorize_params(partner_url)["client_id"] == PARTNER_CLIENT_ID


def test_the_same_subject_at_two_providers_is_two_users(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    """No linking happens by itself: alice at corp and alice at partner are different accounts."""
    at_corp, at_partner = app.test_client(), app.test_client()
    assert sign_in_with(at_corp, "corp", provider).location == "/"
    assert sign_in_with(at_partner, "partner", partner).location == "/"
    corp_sid, partner_sid = session_id(app, at_corp), session_id(app, at_partner)
    assert corp_sid and partner_sid
    assert corp_sid.split(".")[0] == keys.user_tag(ISSUER, "alice")
    assert partner_sid.split(".")[0] == keys.user_tag(PARTNER_ISSUER, "alice")
    sessions_page = at_partner.get("/sessions").get_data(as_text=True)
    assert 'data-testid="session-provider">Partner<' in sessions_page


@pytest.mark.parametrize("path", ["/login/nope", "/auth/callback/nope", "/auth/callback"])
def test_a_provider_name_that_is_not_configured_is_a_404(client: FlaskClient, path: str) -> None:
    """/auth/callback is the one-provider form's callback: with several providers there is none there."""
    answer = client.get(f"{path}?code=x&state=y")
    assert answer.status_code == 404
    assert "There is no such sign-in provider here." in answer.get_data(as_text=True)


def test_an_answer_to_a_sign_in_with_partner_delivered_to_corps_callback_is_refused(
    app: Flask, client: FlaskClient, partner: MockProvider, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """Mix-up: partner's code and state at corp's callback. Refused before any code is redeemed; the state is
    used up, so the same answer at partner's callback afterwards is "expired"."""
    url = start(client, "partner")
    code = partner.approve(url, "mallory")
    refused = finish(client, "corp", url, code)
    assert refused.location == "/auth/failed?reason=failed"
    assert provider.token_requests == [] and partner.token_requests == []
    assert finish(client, "partner", url, code).location == "/auth/failed?reason=expired"
    assert not any(fake_redis.scan_iter("gh:{*"))


def test_a_code_from_partner_with_corps_state_is_refused_by_corp(
    client: FlaskClient, partner: MockProvider, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """A sign-in started with corp, answered with a code partner issued: corp's token endpoint knows no such code."""
    corp_url, partner_url = start(client, "corp"), start(client, "partner")
    partner_code = partner.approve(partner_url, "mallory")
    assert finish(client, "corp", corp_url, partner_code).location == "/auth/failed?reason=failed"
    assert not any(fake_redis.scan_iter("gh:{*"))


def test_an_iss_naming_the_other_provider_is_refused(
    make_app: AppFactory, partner: MockProvider, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """RFC 9207: corp advertises `iss` in its answers; an answer carrying partner's issuer is refused."""
    provider.discovery_overrides = {"authorization_response_iss_parameter_supported": True}
    client = make_app(**several()).test_client()
    url = start(client, "corp")
    refused = finish(client, "corp", url, provider.approve(url), iss=PARTNER_ISSUER)
    assert refused.location == "/auth/failed?reason=failed"
    url = start(client, "corp")
    assert finish(client, "corp", url, provider.approve(url), iss=ISSUER).location == "/"


def test_sign_out_goes_to_the_provider_the_session_signed_in_with(client: FlaskClient, partner: MockProvider) -> None:
    sign_in_with(client, "partner", partner)
    token = client.get("/sessions").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/logout", data={"csrf_token": token})
    assert answer.location.startswith(f"{PARTNER_ISSUER}/logout?")


# ---- Microsoft Entra's multi-tenant issuer: a template ---------------------------------------------------


@pytest.fixture(scope="session")
def entra_key() -> RSAKey:
    """The Entra-like provider's RSA signing key (generated once: key generation is the slow part)."""
    return RSAKey.generate_key(2048, parameters={"kid": "entra-key"})


@pytest.fixture
def entra(mocked_http: responses.RequestsMock, entra_key: RSAKey) -> MockProvider:
    """An Entra-like provider: discovery at the "common" tenant, whose `issuer` is the template."""
    fake = MockProvider(
        key=entra_key,
        issuer="https://entra.example.test/common/v2.0",
        client_id="gatehouse-entra",
        client_secret="entra-secret",
    )
    fake.discovery_overrides = {"issuer": ENTRA_TEMPLATE}
    fake.register(mocked_http)
    return fake


def entra_app(make_app: AppFactory, **extra: str) -> Flask:
    return make_app(
        **several(
            OIDC_PROVIDERS="corp,entra",
            OIDC_ENTRA_ISSUER=ENTRA_TEMPLATE,
            OIDC_ENTRA_CLIENT_ID="gatehouse-entra",
            OIDC_ENTRA_CLIENT_SECRET="entra-secret",
            **extra,
        )
    )


def sign_in_at_tenant(app: Flask, entra: MockProvider, **claims: Any) -> TestResponse:
    client = app.test_client()
    url = start(client, "entra")
    entra.id_token_overrides = claims
    return finish(client, "entra", url, entra.approve(url, "entra-user"))


def test_an_entra_style_issuer_takes_the_tenant_the_token_names(make_app: AppFactory, entra: MockProvider) -> None:
    app = entra_app(make_app)
    landed = sign_in_at_tenant(app, entra, iss=f"https://entra.example.test/{TENANT_A}/v2.0", tid=TENANT_A)
    assert landed.location == "/"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": f"https://entra.example.test/{TENANT_A}/v2.0", "tid": TENANT_B}, id="forged tid"),
        pytest.param({"iss": f"https://entra.example.test/{TENANT_A}/v2.0"}, id="no tid"),
        pytest.param({"iss": ENTRA_TEMPLATE, "tid": TENANT_A}, id="the template itself as iss"),
        pytest.param({"iss": "https://entra.example.test/../v2.0", "tid": ".."}, id="a tid that is no tenant"),
    ],
)
def test_an_entra_style_token_whose_iss_is_not_its_own_tenants_is_refused(
    make_app: AppFactory, entra: MockProvider, fake_redis: RecordingRedis, claims: dict[str, Any]
) -> None:
    app = entra_app(make_app)
    assert sign_in_at_tenant(app, entra, **claims).location == "/auth/failed?reason=failed"
    assert not any(fake_redis.scan_iter("gh:{*"))


def test_a_tenant_outside_the_allow_list_is_refused(make_app: AppFactory, entra: MockProvider) -> None:
    app = entra_app(make_app, OIDC_ENTRA_TENANTS=TENANT_A)
    allowed = sign_in_at_tenant(app, entra, iss=f"https://entra.example.test/{TENANT_A}/v2.0", tid=TENANT_A)
    assert allowed.location == "/"
    other = sign_in_at_tenant(app, entra, iss=f"https://entra.example.test/{TENANT_B}/v2.0", tid=TENANT_B)
    assert other.location == "/auth/failed?reason=failed"


def test_signing_in_with_one_provider_asks_nothing_of_the_other(
    app: Flask, provider: MockProvider, mocked_http: responses.RequestsMock, fake_redis: RecordingRedis
) -> None:
    """Signing in with corp fetches nothing from partner (partner may be down meanwhile)."""
    client = app.test_client()
    sign_in_with(client, "corp", provider)
    assert session_exists(fake_redis, session_id(app, client))
    assert [call.request.url for call in mocked_http.calls if call.request.url.startswith(PARTNER_ISSUER)] == []


# ---- Back-channel logout: each token is judged by its own provider, and ends only that provider's sessions ----


def test_a_logout_token_signed_by_partner_in_corps_name_is_refused(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis
) -> None:
    browser = app.test_client()
    sign_in_with(browser, "corp", provider)
    forged = logout_token(provider, key_of=partner, sub="alice")
    answer = post_logout(app.test_client(), forged)
    assert answer.status_code == 400
    assert session_exists(fake_redis, session_id(app, browser))


def test_a_logout_token_naming_no_configured_provider_is_refused(app: Flask, partner: MockProvider) -> None:
    stranger = MockProvider(key=partner.key, issuer="https://stranger.example.test", client_id=PARTNER_CLIENT_ID)
    answer = post_logout(app.test_client(), logout_token(stranger, sub="alice"))
    assert answer.status_code == 400
    assert "names no known provider" in answer.get_json()["error_description"]


@pytest.mark.parametrize("names", ["sid", "sub"])
def test_partners_logout_ends_only_the_sessions_signed_in_with_partner(
    app: Flask, provider: MockProvider, partner: MockProvider, fake_redis: RecordingRedis, names: str
) -> None:
    """Both providers use the same `sid` and the same `sub`: partner's logout ends partner's session only."""
    at_corp, at_partner = app.test_client(), app.test_client()
    for client, name, fake in ((at_corp, "corp", provider), (at_partner, "partner", partner)):
        url = start(client, name)
        finish(client, name, url, fake.approve(url, "alice", sid="the-same-sid"))
    corp_sid, partner_sid = session_id(app, at_corp), session_id(app, at_partner)
    # A `sub` alone ends the sessions started before the token (the receiving time, at the latest).
    claims = {"sid": "the-same-sid"} if names == "sid" else {"sub": "alice", "iat": int(time.time()) + 1}

    assert post_logout(app.test_client(), logout_token(partner, **claims)).status_code == 200

    assert not session_exists(fake_redis, partner_sid)
    assert session_exists(fake_redis, corp_sid)
