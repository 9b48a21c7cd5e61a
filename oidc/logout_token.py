"""Back-Channel Logout 1.0 logout tokens, validated like ID tokens and more (section 2.6 of the spec)."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from oidc.id_token import (
    LEEWAY_SECONDS,
    IdTokenError,
    IssuerOf,
    check_issued_at,
    check_issuer_and_audience,
    check_not_before,
    expected_issuer,
    is_number,
    verified_token,
)
from oidc.keys import JwksCache

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 (a JWT media type, not a secret)
MAX_LOGOUT_TOKEN_LENGTH = 16 * 1024


class LogoutTokenError(IdTokenError):
    """The logout token is not acceptable; the message is for logs and the provider, never a page."""


@dataclass(frozen=True)
class LogoutRequest:
    """What a valid logout token asks for."""

    issuer: str
    subject: str | None
    provider_sid: str | None
    jti: str
    issued_at: float
    expires_at: float | None


def validate_logout_token(
    raw: Any,
    *,
    keys: JwksCache,
    issuer: str | IssuerOf,
    client_id: str,
    algorithms: Collection[str],
    now: float | None = None,
) -> LogoutRequest:
    """Verify signature, iss, aud, iat, exp, events, sid/sub, no nonce, typ and jti; raise LogoutTokenError."""
    now = time.time() if now is None else now
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LOGOUT_TOKEN_LENGTH:
        raise LogoutTokenError("logout_token is missing or too long")
    try:
        header, claims = verified_token(raw, keys=keys, algorithms=algorithms)
        issuer = expected_issuer(issuer, claims)
        check_issuer_and_audience(claims, issuer=issuer, client_id=client_id)
        check_issued_at(claims.get("iat"), now)
    except LogoutTokenError:
        raise
    except IdTokenError as error:
        raise LogoutTokenError(str(error)) from error
    _check_logout_claims(header, claims, now)
    return LogoutRequest(
        issuer=issuer,
        subject=claims.get("sub"),
        provider_sid=claims.get("sid"),
        jti=claims["jti"],
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]) if claims.get("exp") is not None else None,
    )


def _check_logout_claims(header: dict[str, Any], claims: dict[str, Any], now: float) -> None:
    """What makes a verified token a logout token (spec 2.4 and 2.6): typ, exp, nbf, events, sub/sid, no nonce, jti."""
    if "typ" in header and str(header["typ"]).lower() not in (LOGOUT_TOKEN_TYPE, f"application/{LOGOUT_TOKEN_TYPE}"):
        raise LogoutTokenError("typ is not logout+jwt")
    exp = claims.get("exp")
    if exp is not None and (not is_number(exp) or now > exp + LEEWAY_SECONDS):
        raise LogoutTokenError("logout token is expired")
    try:
        check_not_before(claims.get("nbf"), now)
    except IdTokenError as error:
        raise LogoutTokenError(str(error)) from error
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise LogoutTokenError("events claim lacks the back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token must not carry a nonce")
    subject, provider_sid = claims.get("sub"), claims.get("sid")
    if subject is not None and (not isinstance(subject, str) or not subject):
        raise LogoutTokenError("sub is not a string")
    if provider_sid is not None and (not isinstance(provider_sid, str) or not provider_sid):
        raise LogoutTokenError("sid is not a string")
    if subject is None and provider_sid is None:
        raise LogoutTokenError("neither sub nor sid")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise LogoutTokenError("jti is missing")


def claimed_issuer(raw: Any) -> str | None:
    """The `iss` a logout token claims, nothing verified: only to pick the provider whose checks it then meets."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LOGOUT_TOKEN_LENGTH:
        return None
    try:
        claims = json.loads(jws.extract_compact(raw.encode()).payload)
    except (JoseError, ValueError, TypeError, UnicodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None
