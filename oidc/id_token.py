"""ID token validation, as a certified relying party does it.

Authlib's defaults leave gaps (audience not strictly enforced, `azp`-only
matches pass, an issuer check that vanishes with custom claims options), so
Gatehouse checks every claim itself after joserfc verifies the signature.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeGuard

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from oidc.keys import JwksCache, KeySetError

# Only asymmetric algorithms: "none" and HMAC (where a public key could be abused
# as the shared secret) are never accepted for ID tokens.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
LEEWAY_SECONDS = 60
# Gives the issuer a token must name from its verified claims (a template issuer's: filled with the token's `tid`).
IssuerOf = Callable[[Mapping[str, Any]], str]
MAX_TOKEN_AGE_SECONDS = 10 * 60


class IdTokenError(Exception):
    """The ID token is not acceptable; the message is for logs, never for the page."""


def allowed_algorithms(advertised: Collection[str] | None) -> list[str]:
    """The algorithms to accept: asymmetric ones the provider advertises (RS256 if it says none)."""
    advertised = advertised or ["RS256"]
    return [alg for alg in ASYMMETRIC_ALGORITHMS if alg in advertised]


def validate_id_token(
    raw: str,
    *,
    keys: JwksCache,
    issuer: str | IssuerOf,
    client_id: str,
    algorithms: Collection[str],
    nonce: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify the signature and every required claim; return the claims or raise IdTokenError.

    `issuer` is the issuer, or (for a template issuer) what gives it from the verified claims.
    """
    claims = verified_claims(raw, keys=keys, algorithms=algorithms)
    check_claims(claims, issuer=expected_issuer(issuer, claims), client_id=client_id, nonce=nonce, now=now)
    return claims


def expected_issuer(issuer: str | IssuerOf, claims: Mapping[str, Any]) -> str:
    """The issuer verified claims must name: `issuer` itself, or what it gives for them (raises IdTokenError)."""
    return issuer if isinstance(issuer, str) else issuer(claims)


def verified_claims(raw: str, *, keys: JwksCache, algorithms: Collection[str]) -> dict[str, Any]:
    """The claims of a JWS signed by one of the provider's keys with an accepted algorithm (no claim checks)."""
    return verified_token(raw, keys=keys, algorithms=algorithms)[1]


def verified_token(raw: str, *, keys: JwksCache, algorithms: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(protected header, claims) of a JWS signed by one of the provider's keys with an accepted algorithm."""
    header = _header(raw)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise IdTokenError(f"algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenError("kid is not a string")
    try:
        candidates = keys.candidates(kid, alg)
    except KeySetError as error:
        raise IdTokenError(str(error)) from error
    return header, _verified_claims(raw, candidates, alg)


def check_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str | None, now: float | None = None
) -> None:
    """Check iss, sub, aud, azp, exp, iat and nonce (OpenID Connect Core 3.1.3.7)."""
    now = time.time() if now is None else now
    check_issuer_and_audience(claims, issuer=issuer, client_id=client_id)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenError("subject is missing")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not is_number(exp) or now > exp + LEEWAY_SECONDS:
        raise IdTokenError("token is expired or has no expiry")
    check_issued_at(iat, now)
    check_not_before(claims.get("nbf"), now)
    if nonce is not None:
        received = claims.get("nonce")
        if not isinstance(received, str) or not hmac.compare_digest(received, nonce):
            raise IdTokenError("nonce does not match")


def check_issued_at(iat: Any, now: float) -> None:
    """`iat` is a number, recent, and not in the future."""
    if not is_number(iat) or iat > now + LEEWAY_SECONDS or now - iat > MAX_TOKEN_AGE_SECONDS:
        raise IdTokenError("issued-at time is missing or out of range")


def check_issuer_and_audience(claims: dict[str, Any], *, issuer: str, client_id: str) -> None:
    """`iss` is our provider, every `aud` is us, and `azp` (if any) is us."""
    if claims.get("iss") != issuer:
        raise IdTokenError("issuer does not match")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    # Every audience must be us: a token also meant for another party is refused.
    if not audiences or any(entry != client_id for entry in audiences):
        raise IdTokenError("audience does not match")
    if "azp" in claims and claims["azp"] != client_id:
        raise IdTokenError("authorized party does not match")


def _header(raw: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(raw.encode()).protected)
    except (JoseError, ValueError, TypeError, UnicodeError) as error:
        raise IdTokenError("token is not a compact JWS") from error


def _verified_claims(raw: str, candidates: list[Any], alg: str) -> dict[str, Any]:
    if not candidates:
        raise IdTokenError("no provider key matches the token")
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    for key in candidates:
        try:
            return dict(jwt.decode(raw, key, algorithms=[alg], registry=registry).claims)
        except JoseError:
            continue
    raise IdTokenError("signature does not verify")


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite JSON number (not a boolean; Python's JSON parser also yields NaN and Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def usable_auth_time(value: Any, now: float | None = None) -> int | None:
    """An ID token's `auth_time` as whole seconds, or None if it is not a finite number from 0 up to `now` (with
    leeway). A sign-in keeps going without one: its user is simply asked to re-authenticate for a sensitive action."""
    now = time.time() if now is None else now
    if not is_number(value) or value < 0 or value > now + LEEWAY_SECONDS:
        return None
    return int(value)


def check_not_before(nbf: Any, now: float) -> None:
    """`nbf`, where present, is a number no later than now (with leeway)."""
    if nbf is not None and (not is_number(nbf) or nbf > now + LEEWAY_SECONDS):
        raise IdTokenError("token is not valid yet")
