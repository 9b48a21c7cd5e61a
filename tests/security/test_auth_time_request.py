"""Asking for `auth_time` (OIDC Core 5.5, the `claims` parameter) over real HTTP, against the hostile provider.

Only a discovery document saying `claims_parameter_supported: true` (the JSON boolean) gets the parameter;
an `auth_time` that is missing or not a usable number still signs the user in, with no auth time kept.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from sessions import keys
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import DROP, HostileProvider

pytestmark = pytest.mark.integration

AUTH_TIME_CLAIMS = '{"id_token":{"auth_time":{"essential":true}}}'


def stored_auth_time(gatehouse: Gatehouse) -> bytes | None:
    """The raw auth time of the one signed-in session (b"" when it has none)."""
    (sid,) = gatehouse.session_records()
    parsed = keys.parse_sid(sid)
    assert parsed is not None and parsed[0] is not None, sid
    value: bytes | None = gatehouse.redis.hget(keys.session_key(parsed[0], parsed[1]), "at")
    return value


@pytest.mark.parametrize(
    ("supported", "sent"),
    [(True, True), (DROP, False), (False, False), ("true", False), (1, False), ([True], False), (None, False)],
    ids=["true", "absent", "false", "string", "one", "list", "null"],
)
def test_the_claims_parameter_goes_only_to_a_provider_that_advertises_it(
    gatehouse: Gatehouse, provider: HostileProvider, supported: Any, sent: bool
) -> None:
    """The authorization request carries the exact claims JSON only for `true`; the sign-in works either way."""
    provider.behaviour.discovery = {"claims_parameter_supported": supported}
    before = int(time.time())
    gatehouse.browser().sign_in("alice")
    (params,) = provider.authorize_params()
    assert params.get("claims") == (AUTH_TIME_CLAIMS if sent else None)
    # This provider always sends auth_time (now), asked or not.
    stored = stored_auth_time(gatehouse)
    assert stored and before <= int(stored) <= time.time()


@pytest.mark.parametrize(
    "auth_time",
    [DROP, "now", True, math.nan, math.inf, -5, "future"],
    ids=["missing", "text", "boolean", "NaN", "Infinity", "negative", "future"],
)
def test_a_missing_or_bad_auth_time_signs_in_without_one(
    gatehouse: Gatehouse, provider: HostileProvider, auth_time: Any
) -> None:
    """Asked for auth_time, the provider omits or garbles it: signed in as before, no auth time stored."""
    provider.behaviour.discovery = {"claims_parameter_supported": True}
    provider.behaviour.id_token_claims = {"auth_time": int(time.time()) + 3600 if auth_time == "future" else auth_time}
    browser = gatehouse.browser()
    browser.sign_in("alice")
    assert provider.authorize_params()[0]["claims"] == AUTH_TIME_CLAIMS
    assert gatehouse.signed_in_subjects() == ["alice"]
    assert stored_auth_time(gatehouse) == b""
    assert browser.get("/profile").status_code == 200
