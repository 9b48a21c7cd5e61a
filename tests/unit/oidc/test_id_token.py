"""oidc/id_token.py: validate_id_token accepts a good ID token and refuses every kind of bad one."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from oidc.id_token import IdTokenError, allowed_algorithms, validate_id_token
from oidc.keys import JwksCache
from tests.unit.mock_provider import CLIENT_ID, DROP, ISSUER, apply_overrides, b64url, sign_token
from tests.unit.oidc.fakes import CountingJwks, FakeClock

NONCE = "nonce-4f1c"
WEEK = 7 * 24 * 3600


def claims(**overrides: Any) -> dict[str, Any]:
    """Good ID token claims for alice, with `overrides` (DROP removes a claim)."""
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "alice", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": NONCE}
    return apply_overrides(base, overrides)


def validate(raw: str, cache: JwksCache, *, nonce: str | None = NONCE, algorithms: list[str] | None = None) -> dict:
    """validate_id_token with the test provider's settings."""
    return validate_id_token(
        raw, keys=cache, issuer=ISSUER, client_id=CLIENT_ID, algorithms=algorithms or ["RS256"], nonce=nonce
    )


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand (for tokens no honest library would sign)."""
    encoded = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    return encoded + "." + b64url(signature)


@pytest.fixture
def cache(jwks: CountingJwks) -> JwksCache:
    """A key cache over the provider's one signing key."""
    return JwksCache(jwks)


def test_a_good_token_is_accepted(signing_key: RSAKey, cache: JwksCache) -> None:
    result = validate(sign_token(claims(email="alice@example.test"), signing_key), cache)
    assert result["sub"] == "alice"
    assert result["email"] == "alice@example.test"


def test_an_audience_list_naming_only_us_is_accepted(signing_key: RSAKey, cache: JwksCache) -> None:
    assert validate(sign_token(claims(aud=[CLIENT_ID], azp=CLIENT_ID), signing_key), cache)["sub"] == "alice"


def test_no_nonce_is_required_when_none_was_sent(signing_key: RSAKey, cache: JwksCache) -> None:
    # Refreshed ID tokens carry no nonce; the caller passes nonce=None.
    assert validate(sign_token(claims(nonce=DROP), signing_key), cache, nonce=None)["sub"] == "alice"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iss": "https://evil.example.test"}, id="wrong-iss"),
        pytest.param({"iss": ISSUER + "/"}, id="iss-with-extra-slash"),
        pytest.param({"iss": DROP}, id="missing-iss"),
        pytest.param({"sub": DROP}, id="missing-sub"),
        pytest.param({"sub": ""}, id="empty-sub"),
        pytest.param({"aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"aud": DROP}, id="missing-aud"),
        pytest.param({"aud": []}, id="empty-aud-list"),
        pytest.param({"aud": [CLIENT_ID, "another-client"]}, id="aud-list-with-extra-audience"),
        pytest.param({"aud": ["another-client"], "azp": CLIENT_ID}, id="only-azp-names-us"),
        pytest.param({"azp": "another-client"}, id="azp-mismatch"),
        pytest.param({"iat": DROP}, id="missing-iat"),
        pytest.param({"iat": int(time.time()) - WEEK}, id="iat-a-week-old"),
        pytest.param({"iat": int(time.time()) + 3600}, id="iat-in-the-future"),
        pytest.param({"iat": "now"}, id="iat-not-a-number"),
        pytest.param({"exp": DROP}, id="missing-exp"),
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
        pytest.param({"nonce": "another-nonce"}, id="wrong-nonce"),
        pytest.param({"nonce": DROP}, id="missing-nonce"),
    ],
)
def test_bad_claims_are_refused_in_process(signing_key: RSAKey, cache: JwksCache, overrides: dict[str, Any]) -> None:
    with pytest.raises(IdTokenError):
        validate(sign_token(claims(**overrides), signing_key), cache)


def test_alg_none_is_refused(cache: JwksCache) -> None:
    with pytest.raises(IdTokenError):
        validate(unsigned({"alg": "none"}, claims()), cache)
    with pytest.raises(IdTokenError):
        validate(unsigned({"alg": "none"}, claims()), cache, algorithms=["none", "RS256"])


def test_hs256_signed_with_the_public_key_is_refused_in_process(signing_key: RSAKey, cache: JwksCache) -> None:
    header = {"alg": "HS256", "kid": signing_key.kid}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims()).encode())).encode()
    for secret in (signing_key.as_pem(private=False), json.dumps(signing_key.as_dict(private=False)).encode()):
        forged = signing_input.decode() + "." + b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
        with pytest.raises(IdTokenError):
            validate(forged, cache)
        # Even a provider advertising HS256 does not make it acceptable.
        with pytest.raises(IdTokenError):
            validate(forged, cache, algorithms=allowed_algorithms(["HS256", "RS256"]))


def test_only_asymmetric_advertised_algorithms_are_allowed() -> None:
    assert allowed_algorithms(["HS256", "none", "RS256", "ES256"]) == ["RS256", "ES256"]
    assert allowed_algorithms(None) == ["RS256"]


def test_a_corrupted_signature_is_refused(signing_key: RSAKey, cache: JwksCache) -> None:
    head, payload, signature = sign_token(claims(), signing_key).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    with pytest.raises(IdTokenError):
        validate(f"{head}.{payload}.{flipped}", cache)


def test_a_changed_payload_is_refused(signing_key: RSAKey, cache: JwksCache) -> None:
    head, _, signature = sign_token(claims(), signing_key).split(".")
    other_payload = b64url(json.dumps(claims(sub="mallory")).encode())
    with pytest.raises(IdTokenError):
        validate(f"{head}.{other_payload}.{signature}", cache)


def test_garbage_is_refused(cache: JwksCache) -> None:
    for raw in ("", "not-a-jwt", "a.b.c", "...."):
        with pytest.raises(IdTokenError):
            validate(raw, cache)


def test_a_token_from_a_key_we_do_not_know_is_refused(stranger_key: RSAKey, cache: JwksCache) -> None:
    with pytest.raises(IdTokenError):
        validate(sign_token(claims(), stranger_key, header={"kid": "provider-key-1"}), cache)


def test_an_unknown_kid_is_refused_after_one_refetch(
    stranger_key: RSAKey, jwks: CountingJwks, cache: JwksCache, clock: FakeClock, signing_key: RSAKey
) -> None:
    validate(sign_token(claims(), signing_key), cache)
    assert jwks.fetches == 1
    clock.advance(60)
    with pytest.raises(IdTokenError):
        validate(sign_token(claims(), stranger_key), cache)
    assert jwks.fetches == 2


def test_an_algorithm_the_provider_does_not_advertise_is_refused(ec_key: ECKey, signing_key: RSAKey) -> None:
    cache = JwksCache(CountingJwks([signing_key, ec_key]))
    token = sign_token(claims(), ec_key, header={"alg": "ES256"})
    with pytest.raises(IdTokenError):
        validate(token, cache, algorithms=["RS256"])
    # The same token passes where ES256 is advertised: the refusal is about the algorithm.
    assert validate(token, cache, algorithms=["RS256", "ES256"])["sub"] == "alice"


def test_no_kid_with_a_single_key_is_accepted_in_process(signing_key: RSAKey, cache: JwksCache) -> None:
    assert validate(sign_token(claims(), signing_key, header={"kid": DROP}), cache)["sub"] == "alice"


def test_no_kid_with_several_keys_tries_each_and_never_crashes(
    signing_key: RSAKey, second_key: RSAKey, stranger_key: RSAKey
) -> None:
    cache = JwksCache(CountingJwks([second_key, signing_key]))
    assert validate(sign_token(claims(), signing_key, header={"kid": DROP}), cache)["sub"] == "alice"
    with pytest.raises(IdTokenError):
        validate(sign_token(claims(), stranger_key, header={"kid": DROP}), cache)
