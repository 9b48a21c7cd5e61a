"""A validated sign-in becomes a session: the sign-in hooks, a new session id, and the user's persistence."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from accounts.persistence import persist_signed_in_user
from oidc.id_token import usable_auth_time
from sessions.hooks import session_hooks
from sessions.identity_links import account_of, forget_stale_link, linked_elsewhere
from sessions.lifecycle import AccountDisabled, ProviderSessionEnded, StaleLink, end_user_session, start_user_session
from sessions.user import current_session
from sessions.user_state import read_user_state
from signin.callback import LoginResult
from signin.email_linking import link_by_verified_email
from signin.failures import LoginFailed
from users.choices import LOCALE_CODES, timezone_codes
from users.schema import (
    DISPLAY_NAME_MAX,
    EMAIL_MAX,
    NAME_MAX,
    PICTURE_MAX,
    Identity,
    clean_text,
    identity_dict,
    profile_dict,
    profile_from,
)
from users.tags import user_tag

# The identity claims a sign-in keeps besides issuer and subject, with their limits.
IDENTITY_LIMITS = {"email": EMAIL_MAX, "name": NAME_MAX, "picture": PICTURE_MAX}


def identity_from(claims: Mapping[str, Any]) -> Identity:
    """Who signed in, as the provider vouches, with every claim made storable (no control characters, capped)."""
    storable = {claim: clean_text(claims.get(claim), limit) for claim, limit in IDENTITY_LIMITS.items()}
    return Identity(issuer=claims["iss"], subject=claims["sub"], **storable)


def email_verified(claims: Mapping[str, Any], identity: Identity | None) -> bool:
    """True when the provider verified the address `identity` holds: a real `true` (not a "true" string) about
    the very address it gave (not one a sign-in hook put in its place)."""
    given = clean_text(claims.get("email"), EMAIL_MAX)
    return (
        claims.get("email_verified") is True and given is not None and identity is not None and identity.email == given
    )


def with_hook_changes(identity: Identity, user: Any) -> Identity:
    """The identity with the claims a sign-in hook changed in "user" (never issuer or subject), made storable."""
    if not isinstance(user, Mapping):
        return identity
    changes = {claim: clean_text(user[claim], limit) for claim, limit in IDENTITY_LIMITS.items() if claim in user}
    return msgspec.structs.replace(identity, **changes)


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
        "timezone": zone if zone in timezone_codes() else "UTC",
        "website": None,
        "bio": None,
        "version": 0,
    }


def sign_in(result: LoginResult) -> None:
    """Run the sign-in hooks, start the user's session under a new id, then queue their persistence.

    The session belongs to the account the identity created, or the one it was linked into
    (sessions/identity_links.py). Raises LoginFailed("disabled") for a disabled account, and
    LoginFailed("provider_signed_out") when the provider logged its provider session out before the
    sign-in completed. The hooks see the profile every session of the user shares (or, the first
    time, the provider's defaults). The database is never touched here, but by the first sign-in of an
    identity at a provider trusted for e-mail (signin/email_linking.py).
    """
    signed_in_as = identity_from(result.claims)
    verified = email_verified(result.claims, signed_in_as)
    account, link_field = account_of(signed_in_as.issuer, signed_in_as.subject)
    if not link_field and verified and link_by_verified_email(result.provider, signed_in_as):  # TRUST_EMAIL only
        account, link_field = account_of(signed_in_as.issuer, signed_in_as.subject)
    try:
        start_account_session(result, signed_in_as, account, link_field)
    except StaleLink:
        # Unlinked, or its account deleted, since the link was read: the identity stands for itself again.
        forget_stale_link(signed_in_as.issuer, signed_in_as.subject, account)
        start_account_session(result, signed_in_as, user_tag(signed_in_as.issuer, signed_in_as.subject), "")
        link_field = ""
    if not link_field and linked_elsewhere(signed_in_as.issuer, signed_in_as.subject):
        # Linked into another account while this first sign-in made one of its own (identity_links.py):
        # the link stands, this session ends, and signing in again lands in the account it was linked into.
        end_user_session()
        raise LoginFailed("failed", "the identity was linked into another account during its sign-in")
    persist_signed_in_user(
        signed_in_with={"provider": result.provider, "issuer": signed_in_as.issuer, "subject": signed_in_as.subject},
        # Only of the account's own identity, as the session keeps it (a sign-in hook may have changed the address).
        email_verified=not link_field and email_verified(result.claims, current_session().identity),
    )


def start_account_session(result: LoginResult, signed_in_as: Identity, account: str, link_field: str) -> None:
    """Start the session in `account` (through the link named by `link_field`, or '' for its own identity)."""
    state = read_user_state(account)
    if state.disabled:
        raise LoginFailed("disabled", "account disabled")
    # Signed in with a linked identity, the account keeps its own identity and the hooks see that one.
    identity = state.identity if link_field and state.identity else signed_in_as
    profile = profile_dict(state.profile, state.profile_version) if state.profile else default_profile(result.claims)
    proposed = {"created_at": time.time(), "user": identity_dict(identity), "profile": profile, "tokens": result.tokens}
    data = session_hooks().run_before_session_saved(proposed, result.claims)
    own = {key: value for key, value in data.items() if key not in ("created_at", "user", "profile", "tokens")}
    try:
        start_user_session(
            identity=identity if link_field else with_hook_changes(identity, data.get("user")),
            profile=profile_from(data.get("profile") or profile),
            tokens=data.get("tokens") or result.tokens,
            data=own,
            provider_sid=_text(result.claims.get("sid")),
            auth_time=usable_auth_time(result.claims.get("auth_time")),
            issued_at=int(result.claims["iat"]),
            provider=result.provider,
            link_field=link_field,
        )
    except AccountDisabled as error:
        raise LoginFailed("disabled", "account disabled") from error
    except ProviderSessionEnded as error:
        raise LoginFailed("provider_signed_out", "the provider logged this sign-in's session out") from error


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
