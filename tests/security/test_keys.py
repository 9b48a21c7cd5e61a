"""The provider's signing keys: `kid`-less tokens, key rotation, and no JWKS fetch storms."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.security.checks import assert_login_refused, attempt_login
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.security.jose_forge import compact, rsa_key

pytestmark = pytest.mark.integration


def without_kid(header: dict[str, Any]) -> dict[str, Any]:
    """The header minus its `kid`."""
    return {name: value for name, value in header.items() if name != "kid"}


def test_no_kid_with_a_single_key_is_accepted(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """One published key and a token without `kid`: that key is the one, sign-in succeeds."""
    provider.behaviour.id_token_header = {"kid": None}
    provider.behaviour.forge = lambda header, claims: provider.sign(without_kid(header), claims)
    browser = gatehouse.browser()
    assert attempt_login(browser).headers["Location"] == "/"
    assert browser.signed_in_as() == "Alice"


def test_no_kid_with_several_keys_never_crashes(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Several published keys and no `kid`: the right key is found by trying them, and nothing breaks."""
    provider.keys = [rsa_key("key-1"), rsa_key("key-2"), rsa_key("key-3")]
    provider.signing_key = provider.keys[1]
    provider.behaviour.forge = lambda header, claims: provider.sign(without_kid(header), claims)
    browser = gatehouse.browser()
    response = attempt_login(browser)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert browser.signed_in_as() == "Alice"


def test_no_kid_with_several_keys_and_a_foreign_signature_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Several published keys, no `kid`, signed by none of them: a friendly refusal, not a 500."""
    provider.keys = [rsa_key("key-1"), rsa_key("key-2")]
    attacker = rsa_key("attacker")
    provider.behaviour.forge = lambda header, claims: compact(without_kid(header), claims, attacker.signer())
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))


def test_key_rotation_keeps_sign_in_working(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The provider replaces its key between two sign-ins: both succeed, and the key set is fetched again."""
    first = gatehouse.browser()
    first.sign_in("alice")
    assert provider.hits("/jwks") == 1

    provider.rotate_to(rsa_key("key-2"))
    second = gatehouse.browser()
    second.sign_in("bob")

    assert provider.hits("/jwks") == 2
    assert first.signed_in_as() == "Alice"
    assert second.signed_in_as() == "Bob"


def test_unknown_kids_cannot_cause_a_jwks_fetch_storm(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A stream of tokens with made-up `kid`s makes the app refetch the key set at most once."""
    gatehouse.browser().sign_in("alice")
    assert provider.hits("/jwks") == 1

    provider.behaviour.forge = lambda header, claims: provider.sign(
        {**header, "kid": f"made-up-{secrets.token_hex(4)}"}, claims
    )
    attempts = 25
    for _ in range(attempts):
        browser = gatehouse.browser()
        response = attempt_login(browser)
        assert response.status_code == 303, response.status_code
        assert browser.follow(response).status_code == 400

    assert provider.hits("/jwks") <= 2
    assert gatehouse.signed_in_subjects() == ["alice"]


@pytest.mark.parametrize(
    "jwks",
    [{"keys": [{"kty": "RSA", "kid": "key-1"}]}, {"keys": "none"}, {"nothing": []}, ["not", "a", "key", "set"]],
    ids=["key without modulus", "keys not a list", "no keys member", "a list"],
)
def test_a_malformed_key_set_is_a_friendly_refusal(gatehouse: Gatehouse, provider: HostileProvider, jwks: Any) -> None:
    """Whatever the JWKS endpoint sends, sign-in fails politely instead of crashing."""
    provider.behaviour.jwks = lambda: jwks
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))
