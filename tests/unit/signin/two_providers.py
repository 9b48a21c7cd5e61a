"""Two providers for unit tests: corp (the usual mock provider) and partner (its own issuer, client and key).

`several()` gives the OIDC_PROVIDERS settings naming both; `start`, `finish` and `sign_in_with`
walk a browser through one provider's sign-in.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import responses
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT
from tests.unit.helpers import run_queued_jobs
from tests.unit.mock_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, MockProvider, callback_query, sign_token

PARTNER_ISSUER = "https://partner.example.test"
PARTNER_CLIENT_ID = "gatehouse-partner"
ENTRA_TEMPLATE = "https://entra.example.test/{tenantid}/v2.0"
TENANT_A = "0f3b1a8e-0000-4000-8000-00000000000a"
TENANT_B = "0f3b1a8e-0000-4000-8000-00000000000b"


def several(**extra: str) -> dict[str, str]:
    """Settings naming corp and partner (and nothing of the one-provider form)."""
    return {
        "OIDC_ISSUER": "",
        "OIDC_CLIENT_ID": "",
        "OIDC_CLIENT_SECRET": "",
        "OIDC_PROVIDERS": "corp,partner",
        "OIDC_CORP_ISSUER": ISSUER,
        "OIDC_CORP_CLIENT_ID": CLIENT_ID,
        "OIDC_CORP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_CORP_LABEL": "Corp SSO",
        "OIDC_PARTNER_ISSUER": PARTNER_ISSUER,
        "OIDC_PARTNER_CLIENT_ID": PARTNER_CLIENT_ID,
        "OIDC_PARTNER_CLIENT_SECRET": "partner-secret",
        "OIDC_PARTNER_LABEL": "Partner",
        **extra,
    }


def partner_provider(mocked_http: responses.RequestsMock, key: RSAKey) -> MockProvider:
    """A second provider, with its own `key` (conftest.py's `partner_key`), served by `mocked_http`."""
    fake = MockProvider(
        key=key,
        issuer=PARTNER_ISSUER,
        client_id=PARTNER_CLIENT_ID,
        client_secret="partner-secret",
    )
    fake.register(mocked_http)
    return fake


def start(client: FlaskClient, name: str, next_path: str = "/") -> str:
    """GET /login/<name>: the provider's authorization URL it redirects to."""
    answer = client.get(f"/login/{name}?next={next_path}")
    assert answer.status_code == 302, answer.status_code
    return answer.location


def finish(client: FlaskClient, name: str, authorize_url: str, code: str, **params: str) -> TestResponse:
    return client.get(f"/auth/callback/{name}?{callback_query(authorize_url, code=code, **params)}")


def sign_in_with(
    client: FlaskClient, name: str, fake: MockProvider, subject: str = "alice", **claims: Any
) -> TestResponse:
    """A whole sign-in with one of the providers (ID token `claims` added); the callback's answer."""
    url = start(client, name)
    landed = finish(client, name, url, fake.approve(url, subject, **claims))
    run_queued_jobs(client.application)
    return landed


def logout_token(fake: MockProvider, *, key_of: MockProvider | None = None, **claims: Any) -> str:
    """A logout token in `fake`'s name, signed with `key_of`'s key (by default `fake`'s own)."""
    now = int(time.time())
    body = {
        "iss": fake.issuer,
        "aud": fake.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_hex(8),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **claims,
    }
    return sign_token(body, (key_of or fake).key, header={"typ": "logout+jwt"})


def post_logout(client: FlaskClient, token: str) -> TestResponse:
    return client.post("/auth/backchannel-logout", data={"logout_token": token})
