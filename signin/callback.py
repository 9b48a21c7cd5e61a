"""Finishing a sign-in at the callback: the provider's answer validated end to end, as a certified RP does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError

from oidc.id_token import IdTokenError
from oidc.provider import Provider, ProviderError
from oidc.tokens import token_fields
from provider_settings import SINGLE_PROVIDER
from signin.failures import LoginFailed
from signin.login_state import pop_login_state
from users.schema import ISSUER_MAX, SUBJECT_MAX, clean_text

# Claims only the signed ID token may bring: when it lacks one, UserInfo's is not taken (an `auth_time` there
# would skip a re-authentication; a `sid` would tie the session to whatever provider session it names).
ID_TOKEN_ONLY_CLAIMS = frozenset(
    {"iss", "aud", "exp", "iat", "nbf", "nonce", "auth_time", "sid", "acr", "amr", "azp", "at_hash", "c_hash", "jti"}
)


@dataclass(frozen=True)
class LoginResult:
    """A completed, fully validated sign-in."""

    claims: dict[str, Any]
    tokens: dict[str, Any]
    next_path: str
    # The name of the provider it came from.
    provider: str
    # Set when this was a re-authentication of a signed-in user (signin/reauth.py), not a sign-in.
    reauthentication: dict[str, Any] | None = None
    # Set when the identity is to be linked into the signed-in user's account (signin/linking.py).
    link: dict[str, Any] | None = None


def complete_login(args: Mapping[str, str], provider: Provider) -> LoginResult:
    """Validate `provider`'s answer (at its own callback) end to end and return who signed in."""
    state = pop_login_state(args.get("state"))
    if "error" in args:
        error = args.get("error", "")
        raise LoginFailed(error, f"provider error {error[:40]!r}")
    if state is None:
        raise LoginFailed("expired", "unknown state")
    # A state started before states named their provider belongs to the one provider of those days.
    if state.get("provider", SINGLE_PROVIDER) != provider.name:
        # Mix-up defence: an answer to a sign-in started with another provider, delivered here.
        raise LoginFailed("failed", "the response belongs to a sign-in started with another provider")
    try:
        metadata = provider.metadata()
    except ProviderError as error:
        raise LoginFailed("failed", str(error)) from error
    # RFC 9207: a provider that says it sends `iss` must send its own (mix-up defence).
    iss_expected = metadata.get("authorization_response_iss_parameter_supported") or "iss" in args
    if iss_expected and not provider.issues(args.get("iss") or ""):
        raise LoginFailed("failed", "iss response parameter missing or wrong")
    if not args.get("code"):
        raise LoginFailed("failed", "no authorization code")

    token = _exchange_code(provider, args["code"], state)
    claims = _validated_claims(provider, token, state["nonce"])
    if iss_expected and claims["iss"] != args.get("iss"):
        # A template issuer: the response's tenant and the ID token's must be one.
        raise LoginFailed("failed", "iss response parameter differs from the ID token's")
    check_storable_identity(claims)
    claims = _with_userinfo(provider, claims, token)
    return LoginResult(
        claims=claims,
        tokens=token_fields(token),
        next_path=state["next"],
        provider=provider.name,
        reauthentication=state.get("reauthentication"),
        link=state.get("link"),
    )


def _exchange_code(provider: Provider, code: str, state: Mapping[str, Any]) -> dict[str, Any]:
    try:
        # types-Authlib leaves fetch_access_token unannotated; it returns the token response (a dict).
        token: dict[str, Any] = provider.client.fetch_access_token(  # type: ignore[no-untyped-call]
            redirect_uri=state["redirect_uri"], code=code, code_verifier=state["code_verifier"]
        )
    except OAuthError as error:
        raise LoginFailed("failed", f"token endpoint refused: {error.error!r}") from error
    except (requests.RequestException, ValueError) as error:
        raise LoginFailed("failed", f"token endpoint failed: {type(error).__name__}") from error
    if not token.get("id_token") or not token.get("access_token"):
        raise LoginFailed("failed", "token response lacks id_token or access_token")
    return token


def _validated_claims(provider: Provider, token: Mapping[str, Any], nonce: str) -> dict[str, Any]:
    try:
        return provider.validate_id_token(token["id_token"], nonce=nonce)
    except (IdTokenError, ProviderError) as error:
        raise LoginFailed("failed", f"ID token rejected: {error}") from error


def check_storable_identity(claims: Mapping[str, Any]) -> None:
    """`iss` and `sub` name the user's row, so they cannot be trimmed: refuse what no column can hold.

    OpenID Connect caps `sub` at 255 ASCII characters; control characters have no place in either.
    """
    for claim, limit in (("iss", ISSUER_MAX), ("sub", SUBJECT_MAX)):
        value = claims[claim]
        if len(value) > limit or clean_text(value, limit) != value:
            raise LoginFailed("failed", f"{claim} is too long or holds control characters")


def _with_userinfo(provider: Provider, claims: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """Fill profile claims the ID token left out from UserInfo, whose `sub` must match."""
    endpoint = provider.metadata().get("userinfo_endpoint")
    if not endpoint:
        return claims
    try:
        response = provider.http.get(
            endpoint, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=provider.timeout
        )
        response.raise_for_status()
        userinfo = response.json()
    except (requests.RequestException, ValueError) as error:
        raise LoginFailed("failed", f"userinfo failed: {type(error).__name__}") from error
    if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
        raise LoginFailed("failed", "userinfo sub differs from the ID token's")
    # UserInfo is not signed: it may fill in what the user is called, never what the ID token vouches for.
    profile_claims = {name: value for name, value in userinfo.items() if name not in ID_TOKEN_ONLY_CLAIMS}
    return {**profile_claims, **claims}
