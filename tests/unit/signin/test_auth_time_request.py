"""Asking for `auth_time` at sign-in (OIDC Core 5.5, the `claims` parameter), only where discovery allows it.

A provider whose discovery says `claims_parameter_supported: true` gets
`claims={"id_token":{"auth_time":{"essential":true}}}` at every sign-in and re-authentication; any other
value (missing, false, the string "true", ...) gets no `claims` parameter. A fresh sign-in whose ID token
carries a usable `auth_time` lets "Delete my account" run on the first press; one without (or with a bad
one) leaves the session without an auth time, so the first press goes to the provider, as before.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from oidc.id_token import usable_auth_time
from sessions import keys
from signin.authorize import with_auth_time_request
from tests.unit.helpers import RecordingRedis, session_id, sign_in, signed_in_page_token, start_login
from tests.unit.mock_provider import DROP, ISSUER, MockProvider, authorize_params

AUTH_TIME_CLAIMS = '{"id_token":{"auth_time":{"essential":true}}}'
NOT_TRUE = ["true", "True", 1, "1", "yes", None, {}, [True], False]


def advertise(provider: MockProvider, supported: Any = True) -> None:
    """Make discovery say `claims_parameter_supported: <supported>`."""
    provider.discovery_overrides = {"claims_parameter_supported": supported}


def session_auth_time(app: Flask, redis: RecordingRedis, client: FlaskClient) -> bytes | None:
    """The raw auth time stored with the browser's session (b"" when it has none)."""
    sid = session_id(app, client)
    assert sid, "not signed in"
    user, member = sid.split(".")
    value: bytes | None = redis.hget(keys.session_key(user, member), "at")
    return value


def press_delete(client: FlaskClient) -> TestResponse:
    """Open the delete confirmation page and press its button."""
    return client.post("/account/delete", data={"csrf_token": signed_in_page_token(client, "/account/delete")})


def test_the_claims_parameter_is_sent_with_its_exact_json_when_advertised(
    client: FlaskClient, provider: MockProvider
) -> None:
    advertise(provider)
    params = authorize_params(start_login(client).location)
    assert params["claims"] == AUTH_TIME_CLAIMS
    assert json.loads(params["claims"]) == {"id_token": {"auth_time": {"essential": True}}}


def test_no_claims_parameter_when_discovery_does_not_mention_it(client: FlaskClient) -> None:
    assert "claims" not in authorize_params(start_login(client).location)


@pytest.mark.parametrize("supported", NOT_TRUE, ids=repr)
def test_anything_but_the_boolean_true_sends_no_claims_parameter(
    client: FlaskClient, provider: MockProvider, supported: Any
) -> None:
    advertise(provider, supported)
    start = start_login(client)
    assert start.location.startswith(f"{ISSUER}/authorize?")
    assert "claims" not in authorize_params(start.location)


def test_a_re_authentication_asks_for_auth_time_too_beside_max_age(client: FlaskClient, provider: MockProvider) -> None:
    advertise(provider)
    sign_in(client, provider, "alice", auth_time=int(time.time()) - 3600)
    start = press_delete(client)
    assert start.status_code == 303
    params = authorize_params(start.headers["Location"])
    assert params["max_age"] == "300"
    assert params["claims"] == AUTH_TIME_CLAIMS


def test_a_re_authentication_sends_no_claims_parameter_unless_advertised(
    client: FlaskClient, provider: MockProvider
) -> None:
    advertise(provider, "true")
    sign_in(client, provider, "alice", auth_time=int(time.time()) - 3600)
    params = authorize_params(press_delete(client).headers["Location"])
    assert params["max_age"] == "300"
    assert "claims" not in params


def test_an_existing_claims_request_is_merged_not_replaced() -> None:
    requested = {"userinfo": {"email": None}, "id_token": {"acr": {"values": ["urn:mfa"]}}}
    params = {"max_age": "60", "claims": json.dumps(requested)}
    merged = with_auth_time_request({"claims_parameter_supported": True}, params)
    assert merged["max_age"] == "60"
    assert json.loads(merged["claims"]) == {
        "userinfo": {"email": None},
        "id_token": {"acr": {"values": ["urn:mfa"]}, "auth_time": {"essential": True}},
    }
    # Not advertised: the request goes as it was.
    assert with_auth_time_request({"claims_parameter_supported": "true"}, params) == params


def test_a_fresh_sign_in_with_auth_time_deletes_on_the_first_press(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    advertise(provider)
    provider.auth_time_when_asked = True
    before = int(time.time())
    assert sign_in(client, provider, "alice").status_code == 302
    stored = session_auth_time(app, fake_redis, client)
    assert stored and before <= int(stored) <= time.time()

    answer = press_delete(client)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/account/deleted", "went to the provider instead of deleting"
    assert len(provider.grants) == 1, "a second trip to the provider"


def test_unadvertised_the_provider_is_not_asked_and_the_first_press_re_authenticates(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.auth_time_when_asked = True  # it would answer, but only when asked
    assert sign_in(client, provider, "alice").status_code == 302
    assert session_auth_time(app, fake_redis, client) == b""
    answer = press_delete(client)
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith(f"{ISSUER}/authorize?")


@pytest.mark.parametrize(
    "auth_time",
    [DROP, "now", True, None, math.nan, math.inf, -math.inf, -1, 1e300, "future"],
    ids=["missing", "text", "boolean", "null", "NaN", "Infinity", "-Infinity", "negative", "huge", "future"],
)
def test_an_advertising_provider_that_omits_or_garbles_auth_time_changes_nothing(
    app: Flask, client: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis, auth_time: Any
) -> None:
    """Signed in as before, without an auth time; the first sensitive action goes to the provider."""
    advertise(provider)
    if auth_time == "future":
        auth_time = int(time.time()) + 3600
    provider.id_token_overrides = {"auth_time": auth_time}
    start = start_login(client)
    assert authorize_params(start.location)["claims"] == AUTH_TIME_CLAIMS
    landed = sign_in(client, provider, "alice")
    assert landed.status_code == 302 and landed.location == "/"
    assert client.get("/profile").status_code == 200
    assert session_auth_time(app, fake_redis, client) == b""

    answer = press_delete(client)
    assert answer.status_code == 303
    params = authorize_params(answer.headers["Location"])
    assert answer.headers["Location"].startswith(f"{ISSUER}/authorize?")
    assert params["max_age"] == "300"


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        (1_800_000_000, 1_800_000_000),
        (1_800_000_000.9, 1_800_000_000),
        (1_800_000_060, 1_800_000_060),  # within the leeway
        (1_800_000_061, None),
        (0, 0),
        (-1, None),
        (math.nan, None),
        ("1800000000", None),
        (False, None),
        (None, None),
    ],
)
def test_usable_auth_time(value: Any, usable: int | None) -> None:
    assert usable_auth_time(value, now=1_800_000_000) == usable
