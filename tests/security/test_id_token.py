"""The ID token: every claim, header and signature forgery is refused over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.checks import assert_login_refused, attempt_login
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import CLIENT_ID, DROP, HostileProvider, Recorder
from tests.security.jose_forge import (
    compact,
    corrupt_signature,
    ec_public_jwk,
    es256_signer,
    hmac_signer,
    no_signature,
    rsa_key,
)

pytestmark = pytest.mark.integration

WEEK = 7 * 24 * 3600

# Claim changes that must each make the token unacceptable.
BAD_CLAIMS: dict[str, Callable[[], dict[str, Any]]] = {
    "iss wrong": lambda: {"iss": "https://evil.example"},
    "iss missing": lambda: {"iss": DROP},
    "sub missing": lambda: {"sub": DROP},
    "sub empty": lambda: {"sub": ""},
    "aud wrong": lambda: {"aud": "someone-else"},
    "aud missing": lambda: {"aud": DROP},
    "aud with an extra untrusted audience": lambda: {"aud": [CLIENT_ID, "untrusted-client"]},
    "only azp names us": lambda: {"aud": "someone-else", "azp": CLIENT_ID},
    "azp names someone else": lambda: {"azp": "someone-else"},
    "iat missing": lambda: {"iat": DROP},
    "iat a week old": lambda: {"iat": int(time.time()) - WEEK},
    "iat in the future": lambda: {"iat": int(time.time()) + 3600},
    "exp past": lambda: {"exp": int(time.time()) - 3600},
    "exp missing": lambda: {"exp": DROP},
    "exp not a number": lambda: {"exp": "never"},
    "nbf in the future": lambda: {"nbf": int(time.time()) + 3600},
    "nbf not a number": lambda: {"nbf": "soon"},
    "exp NaN": lambda: {"exp": float("nan")},
    "exp Infinity": lambda: {"exp": float("inf")},
    "iat NaN": lambda: {"iat": float("nan")},
    "iat -Infinity": lambda: {"iat": float("-inf")},
    "nonce wrong": lambda: {"nonce": "not-the-nonce-we-sent"},
    "nonce missing": lambda: {"nonce": DROP},
}


@pytest.mark.parametrize("case", list(BAD_CLAIMS))
def test_bad_claims_are_refused(gatehouse: Gatehouse, provider: HostileProvider, case: str) -> None:
    """Each wrong, missing or out-of-range claim ends in a friendly refusal with no session."""
    provider.behaviour.id_token_claims = BAD_CLAIMS[case]()
    browser = gatehouse.browser()
    response = attempt_login(browser)
    assert provider.token_requests("authorization_code") == 1
    assert_login_refused(gatehouse, provider, browser, response)


# Built when each test runs (times relative to then, not to collection, which may be minutes earlier).
ACCEPTABLE_CLAIMS: dict[str, Callable[[], dict[str, Any]]] = {
    "honest": dict,
    "aud list of us": lambda: {"aud": [CLIENT_ID]},
    "azp is us": lambda: {"azp": CLIENT_ID},
    "iat half a minute ago": lambda: {"iat": int(time.time()) - 30},
    "nbf just passed": lambda: {"nbf": int(time.time()) - 5},
}


@pytest.mark.parametrize("case", list(ACCEPTABLE_CLAIMS))
def test_acceptable_tokens_sign_in(gatehouse: Gatehouse, provider: HostileProvider, case: str) -> None:
    """The control: correct tokens (in their allowed variants) do sign the user in."""
    provider.behaviour.id_token_claims = ACCEPTABLE_CLAIMS[case]()
    browser = gatehouse.browser()
    response = attempt_login(browser)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert browser.signed_in_as() == "Alice"
    assert gatehouse.signed_in_subjects() == ["alice"]


def _refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    browser = gatehouse.browser()
    assert_login_refused(gatehouse, provider, browser, attempt_login(browser))


def test_corrupted_signature_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A token whose signature does not verify."""
    provider.behaviour.forge = lambda header, claims: corrupt_signature(provider.sign(header, claims))
    _refused(gatehouse, provider)


def test_claims_changed_after_signing_are_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """An honest signature over other claims (sub swapped after signing)."""

    def swap_subject(header: dict[str, Any], claims: dict[str, Any]) -> str:
        head, _payload, signature = provider.sign(header, claims).split(".")
        tampered = compact(header, {**claims, "sub": "mallory"}, no_signature).split(".")[1]
        return f"{head}.{tampered}.{signature}"

    provider.behaviour.forge = swap_subject
    _refused(gatehouse, provider)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_spelling_is_refused(gatehouse: Gatehouse, provider: HostileProvider, alg: str) -> None:
    """Unsigned tokens, whatever the spelling of `none`."""
    provider.behaviour.forge = lambda header, claims: compact({**header, "alg": alg}, claims, no_signature)
    _refused(gatehouse, provider)


@pytest.mark.parametrize("secret", ["pem", "jwks json", "modulus"])
def test_hs256_signed_with_the_public_key_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider, secret: str
) -> None:
    """Key confusion: HS256 with the provider's public key (in the usual encodings) as the HMAC secret."""
    key = provider.signing_key
    secrets = {
        "pem": key.public_pem(),
        "jwks json": json.dumps({"keys": [key.public_jwk()]}).encode(),
        "modulus": key.public_jwk()["n"].encode(),
    }
    provider.behaviour.forge = lambda header, claims: compact(
        {**header, "alg": "HS256"}, claims, hmac_signer(secrets[secret])
    )
    _refused(gatehouse, provider)


def test_key_embedded_in_jwk_header_is_ignored(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A token that carries its own (attacker's) key in `jwk`."""
    attacker = rsa_key("attacker")
    provider.behaviour.forge = lambda header, claims: compact(
        {"alg": "RS256", "kid": attacker.kid, "jwk": attacker.public_jwk()}, claims, attacker.signer()
    )
    _refused(gatehouse, provider)


def test_key_embedded_in_jwk_header_without_kid_is_ignored(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The same, without a `kid`, so the provider's only key is tried (and fails)."""
    attacker = rsa_key("attacker")
    provider.behaviour.forge = lambda header, claims: compact(
        {"alg": "RS256", "jwk": attacker.public_jwk()}, claims, attacker.signer()
    )
    _refused(gatehouse, provider)


@pytest.mark.parametrize("header_name", ["jku", "x5u"])
def test_key_urls_in_headers_are_never_fetched(
    gatehouse: Gatehouse, provider: HostileProvider, recorder: Recorder, header_name: str
) -> None:
    """`jku`/`x5u` pointing at an attacker's server: refused, and that server never hears from us."""
    attacker = rsa_key("attacker")
    provider.behaviour.forge = lambda header, claims: compact(
        {"alg": "RS256", "kid": attacker.kid, header_name: f"{recorder.url}/keys"}, claims, attacker.signer()
    )
    _refused(gatehouse, provider)
    assert recorder.hits == []


def test_unknown_critical_header_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """An honestly signed token with a `crit` extension we do not understand."""
    provider.behaviour.id_token_header = {"crit": ["urn:example:must-understand"], "urn:example:must-understand": 1}
    _refused(gatehouse, provider)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_algorithm_the_provider_does_not_use_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider, alg: str
) -> None:
    """Signed with the provider's real key but an algorithm discovery does not list (keys carry no `alg`)."""
    key = provider.signing_key
    provider.behaviour.jwks = lambda: {"keys": [{k: v for k, v in key.public_jwk().items() if k != "alg"}]}
    provider.behaviour.forge = lambda header, claims: compact({**header, "alg": alg}, claims, key.signer(alg))
    _refused(gatehouse, provider)


def test_es256_with_a_published_ec_key_is_refused_when_not_advertised(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """An EC key in the JWKS does not widen the algorithms discovery advertises (RS256 only)."""
    provider.behaviour.jwks = lambda: {"keys": [provider.signing_key.public_jwk(), ec_public_jwk("ec-1")]}
    provider.behaviour.forge = lambda header, claims: compact({"alg": "ES256", "kid": "ec-1"}, claims, es256_signer())
    _refused(gatehouse, provider)


def test_symmetric_and_none_algorithms_stay_refused_even_when_advertised(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """A discovery document listing HS256 and none does not make them acceptable."""
    provider.behaviour.discovery = {"id_token_signing_alg_values_supported": ["HS256", "none", "RS256"]}
    provider.behaviour.forge = lambda header, claims: compact(
        {**header, "alg": "HS256"}, claims, hmac_signer(provider.signing_key.public_pem())
    )
    _refused(gatehouse, provider)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_malformed_tokens_are_refused(gatehouse: Gatehouse, provider: HostileProvider, garbage: str) -> None:
    """Garbage where the ID token should be: a friendly refusal, never a 500."""
    provider.behaviour.forge = lambda header, claims: garbage
    _refused(gatehouse, provider)
