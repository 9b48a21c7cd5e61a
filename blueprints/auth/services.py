"""Sign-in decisions, as plain functions the routes (and tests) call."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

from oidc.id_token import IdTokenError, usable_auth_time, validate_id_token
from oidc.provider import ProviderError, oidc_provider, pop_login_state, store_login_state
from oidc.tokens import token_fields
from sessions import keys
from sessions.hooks import session_hooks
from sessions.lifecycle import AccountDisabled, read_user_state, start_user_session
from users.choices import LOCALE_CODES
from users.persistence import persist_signed_in_user
from users.schema import (
    DISPLAY_NAME_MAX,
    EMAIL_MAX,
    ISSUER_MAX,
    NAME_MAX,
    PICTURE_MAX,
    SUBJECT_MAX,
    Identity,
    clean_text,
    identity_dict,
    profile_dict,
    profile_from,
)

log = logging.getLogger(__name__)

GENERIC_FAILURE = "We could not sign you in. Please try again."
PROVIDER_UNAVAILABLE = "The sign-in provider is unavailable right now. Please try again later."

# What a failed sign-in may tell the user, by kind. The kind travels in the URL of
# the error page (/auth/failed?reason=<kind>), so only these fixed texts can show.
FAILURE_MESSAGES = {
    "failed": GENERIC_FAILURE,
    "unavailable": PROVIDER_UNAVAILABLE,
    "expired": "This sign-in link has expired or was already used. Please sign in again.",
    "disabled": "This account has been disabled. Please contact your administrator.",
    # Provider error codes we can explain; any other is "failed".
    "access_denied": "You declined to sign in, so you are not signed in.",
    "login_required": "The sign-in provider needs you to sign in there first.",
    "consent_required": "The sign-in provider needs your consent first.",
    "interaction_required": "The sign-in provider needs you to finish signing in there.",
    # Re-authentication for a sensitive action (sessions/reauth.py); the user stays signed in.
    "reauth_stale": "The sign-in provider did not confirm that you signed in again just now, so the action was not "
    "done. You are still signed in; to try again, go back and repeat the action.",
    "reauth_other_user": "You signed in at the provider as someone else, so the action was not done. You are still "
    "signed in as before.",
    "reauth_signed_out": "Your session ended while you were confirming it was you. Please sign in again.",
}


# OpenID Connect Core 5.5: ask for `auth_time` as an essential ID token claim, so that a fresh sign-in
# records when the user authenticated and a sensitive action soon after needs no trip to the provider
# (some providers, oidc-provider among them, send `auth_time` only when asked).
AUTH_TIME_REQUEST = {"auth_time": {"essential": True}}


class LoginFailed(Exception):
    """Sign-in cannot complete; `kind` picks the message shown, `reason` is for the log."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind if kind in FAILURE_MESSAGES else "failed"
        self.reason = reason

    @property
    def message(self) -> str:
        """The text safe to show the user."""
        return failure_message(self.kind)


def failure_message(kind: str) -> str:
    """The fixed text for a kind of sign-in failure (unknown kinds get the generic one)."""
    return FAILURE_MESSAGES.get(kind, GENERIC_FAILURE)


@dataclass(frozen=True)
class LoginResult:
    """A completed, fully validated sign-in."""

    claims: dict[str, Any]
    tokens: dict[str, Any]
    next_path: str
    # Set when this was a re-authentication of a signed-in user (sessions/reauth.py), not a sign-in.
    reauthentication: dict[str, Any] | None = None


def authorization_url(redirect_uri: str, next_path: str) -> str:
    """Start a sign-in: remember state, nonce and PKCE verifier, return the provider URL."""
    return _start_authorization(redirect_uri, {"next": next_path})


def reauthentication_url(redirect_uri: str, resume_path: str, user: str, max_age: int, prompt_login: bool) -> str:
    """Start a re-authentication of the signed-in `user`: the provider must authenticate them within `max_age` s.

    `resume_path` is where the callback sends them once it is done; it is kept with the state, server side.
    """
    reauthentication = {"user": user, "max_age": max_age}
    params = {"max_age": str(max_age), **({"prompt": "login"} if prompt_login else {})}
    return _start_authorization(redirect_uri, {"next": resume_path, "reauthentication": reauthentication}, params)


def _start_authorization(redirect_uri: str, kept: dict[str, Any], params: Mapping[str, str] | None = None) -> str:
    """Remember a new state with its nonce, PKCE verifier and `kept`; return the provider's authorization URL."""
    provider = oidc_provider()
    try:
        metadata = provider.metadata()
        authorization = provider.client.create_authorization_url(
            redirect_uri, nonce=generate_token(32), **with_auth_time_request(metadata, params or {})
        )
    except ProviderError as error:
        raise LoginFailed("unavailable", str(error)) from error
    store_login_state(
        authorization["state"],
        {
            "redirect_uri": redirect_uri,
            "code_verifier": authorization["code_verifier"],
            "nonce": authorization["nonce"],
            **kept,
        },
    )
    url: str = authorization["url"]
    return url


def with_auth_time_request(metadata: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """`params` with `auth_time` added to its `claims` request (JSON), if the provider supports the parameter.

    Only a discovery document saying `claims_parameter_supported: true` (the JSON boolean) gets one: the
    default is false, and a provider that does not know the parameter may refuse the whole request.
    """
    if metadata.get("claims_parameter_supported") is not True:
        return dict(params)
    requested: dict[str, Any] = json.loads(params["claims"]) if "claims" in params else {}
    requested["id_token"] = {**requested.get("id_token", {}), **AUTH_TIME_REQUEST}
    return {**params, "claims": json.dumps(requested, separators=(",", ":"))}


def complete_login(args: Mapping[str, str]) -> LoginResult:
    """Validate the provider's answer end to end and return who signed in."""
    state = pop_login_state(args.get("state"))
    if "error" in args:
        error = args.get("error", "")
        raise LoginFailed(error, f"provider error {error[:40]!r}")
    if state is None:
        raise LoginFailed("expired", "unknown state")
    provider = oidc_provider()
    try:
        metadata = provider.metadata()
    except ProviderError as error:
        raise LoginFailed("failed", str(error)) from error
    # RFC 9207: a provider that says it sends `iss` must send ours (mix-up defence).
    iss_expected = metadata.get("authorization_response_iss_parameter_supported") or "iss" in args
    if iss_expected and args.get("iss") != provider.issuer:
        raise LoginFailed("failed", "iss response parameter missing or wrong")
    if not args.get("code"):
        raise LoginFailed("failed", "no authorization code")

    token = _exchange_code(args["code"], state)
    claims = _validated_claims(token, state["nonce"])
    check_storable_identity(claims)
    claims = _with_userinfo(claims, token)
    return LoginResult(
        claims=claims,
        tokens=token_fields(token),
        next_path=state["next"],
        reauthentication=state.get("reauthentication"),
    )


def _exchange_code(code: str, state: Mapping[str, Any]) -> dict[str, Any]:
    try:
        # types-Authlib leaves fetch_access_token unannotated; it returns the token response (a dict).
        token: dict[str, Any] = oidc_provider().client.fetch_access_token(  # type: ignore[no-untyped-call]
            redirect_uri=state["redirect_uri"], code=code, code_verifier=state["code_verifier"]
        )
    except OAuthError as error:
        raise LoginFailed("failed", f"token endpoint refused: {error.error!r}") from error
    except (requests.RequestException, ValueError) as error:
        raise LoginFailed("failed", f"token endpoint failed: {type(error).__name__}") from error
    if not token.get("id_token") or not token.get("access_token"):
        raise LoginFailed("failed", "token response lacks id_token or access_token")
    return token


def _validated_claims(token: Mapping[str, Any], nonce: str) -> dict[str, Any]:
    provider = oidc_provider()
    try:
        return validate_id_token(
            token["id_token"],
            keys=provider.keys,
            issuer=provider.issuer,
            client_id=provider.client_id,
            algorithms=provider.algorithms(),
            nonce=nonce,
        )
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


def _with_userinfo(claims: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """Fill profile claims the ID token left out from UserInfo, whose `sub` must match."""
    provider = oidc_provider()
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
    return {**userinfo, **claims}


def identity_from(claims: Mapping[str, Any]) -> Identity:
    """Who signed in, as the provider vouches, with every claim made storable (no control characters, capped)."""
    return Identity(
        issuer=claims["iss"],
        subject=claims["sub"],
        email=clean_text(claims.get("email"), EMAIL_MAX),
        name=clean_text(claims.get("name"), NAME_MAX),
        picture=clean_text(claims.get("picture"), PICTURE_MAX),
    )


def default_profile(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A first-time user's profile, from what the provider says about them."""
    display_name = (
        clean_text(claims.get("name"), DISPLAY_NAME_MAX)
        or clean_text(claims.get("preferred_username"), DISPLAY_NAME_MAX)
        or clean_text(claims["sub"], DISPLAY_NAME_MAX)
    )
    locale = _text(claims.get("locale"))
    zone = _text(claims.get("zoneinfo"))
    return {
        "display_name": display_name or "New user",
        "locale": locale if locale in LOCALE_CODES else "en",
        "timezone": zone if zone in available_timezones() else "UTC",
        "website": None,
        "bio": None,
        "version": 0,
    }


def sign_in(result: LoginResult) -> None:
    """Run the sign-in hooks, start the user's session under a new id, then queue their persistence.

    Raises LoginFailed("disabled") for a disabled account. The hooks see the
    profile every session of the user shares (or, the first time, the provider's
    defaults); the database is never touched here.
    """
    identity = identity_from(result.claims)
    state = read_user_state(keys.user_tag(identity.issuer, identity.subject))
    if state.disabled:
        raise LoginFailed("disabled", "account disabled")
    profile = profile_dict(state.profile, state.profile_version) if state.profile else default_profile(result.claims)
    proposed = {"created_at": time.time(), "user": identity_dict(identity), "profile": profile, "tokens": result.tokens}
    data = session_hooks().run_before_session_saved(proposed, result.claims)
    own = {key: value for key, value in data.items() if key not in ("created_at", "user", "profile", "tokens")}
    try:
        start_user_session(
            identity=identity_from({**result.claims, **_identity_claims(data.get("user"))}),
            profile=profile_from(data.get("profile") or profile),
            tokens=data.get("tokens") or result.tokens,
            data=own,
            provider_sid=_text(result.claims.get("sid")),
            auth_time=usable_auth_time(result.claims.get("auth_time")),
        )
    except AccountDisabled as error:
        raise LoginFailed("disabled", "account disabled") from error
    persist_signed_in_user()


def _identity_claims(user: Any) -> dict[str, Any]:
    """Identity fields a sign-in hook may have changed (never issuer or subject)."""
    if not isinstance(user, Mapping):
        return {}
    return {claim: user[claim] for claim in ("email", "name", "picture") if claim in user}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
