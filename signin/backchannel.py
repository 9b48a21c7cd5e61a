"""Back-channel logout: the provider says a user (or one provider session) has signed out."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from redis.exceptions import RedisError

from audit import events as audit
from oidc.id_token import LEEWAY_SECONDS, MAX_TOKEN_AGE_SECONDS
from oidc.logout_token import LogoutRequest, LogoutTokenError, claimed_issuer
from oidc.provider import ProviderError, oidc_providers
from sessions.identity_links import account_of
from sessions.lifecycle import end_sessions
from sessions.provider_sessions import mark_logout_token_used, provider_session_logged_out, unmark_logout_token

log = logging.getLogger(__name__)

# How long a token issued now can still be accepted: a used `jti`, and a provider session's logout, are kept so long.
TOKEN_ACCEPTED_SECONDS = int(MAX_TOKEN_AGE_SECONDS + 2 * LEEWAY_SECONDS)


class LogoutUnavailable(Exception):
    """The provider's discovery document or keys cannot be had now: the token was not judged (answered 503)."""


class LogoutRefused(Exception):
    """The request is not a valid, fresh logout token; `error` is the OAuth-style code answered."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def handle_logout_token(form: Mapping[str, str]) -> int:
    """Validate the posted logout token, refuse replays, and end the sessions it names; returns how many.

    The token is checked against the provider its `iss` names (that provider's issuer, client id and
    keys), and ends only sessions signed in with that provider.
    """
    raw = form.get("logout_token")
    providers = oidc_providers()
    # With one provider every token is judged by it (and refused with the reason it fails on).
    provider = providers.issuing(claimed_issuer(raw)) if providers.several else providers.all[0]
    if provider is None:
        raise LogoutRefused("invalid_request", "the logout token is missing, unreadable or names no known provider")
    try:
        request = provider.validate_logout_token(raw)
    except LogoutTokenError as error:
        raise LogoutRefused("invalid_request", str(error)) from error
    except ProviderError as error:
        # Not the token's fault: a 400 is final for a provider, a 503 makes it deliver the token again.
        raise LogoutUnavailable(str(error)) from error
    remember_token(request)
    try:
        return end_named_sessions(request, provider.name)
    except RedisError:
        # Let the provider's retry through: the token did not do its work.
        forget_token(request)
        raise


def remember_token(request: LogoutRequest) -> None:
    """Mark the token's jti as used for as long as the token could be accepted; a second use is refused."""
    if not mark_logout_token_used(request.issuer, request.jti, TOKEN_ACCEPTED_SECONDS):
        raise LogoutRefused("invalid_request", "logout token already used")


def forget_token(request: LogoutRequest) -> None:
    """Unmark a token whose sessions could not be ended (best effort: Redis may be down)."""
    try:
        unmark_logout_token(request.issuer, request.jti)
    except RedisError:
        log.warning("could not unmark a logout token; the provider's retry will be refused")


def end_named_sessions(request: LogoutRequest, provider: str) -> int:
    """A `sid` ends the sessions that provider session started; a `sub` alone, those started before `iat`.

    Either way only sessions signed in with `provider` (the token's) end.
    """
    if request.provider_sid:
        # Every user the provider session signed in (a provider may reuse a `sid`), or the one `sub` names.
        named = account_of(request.issuer, request.subject)[0] if request.subject else ""
        users = provider_session_logged_out(
            request.issuer, request.provider_sid, request.issued_at, TOKEN_ACCEPTED_SECONDS, named
        )
        ended = sum(end_sessions(user, "provider_sid", request.provider_sid, provider=provider) for user in users)
        user = ", ".join(users) or None
    else:
        # validate_logout_token guarantees a `sub` whenever there is no `sid`.
        user = account_of(request.issuer, request.subject or "")[0]
        # Not "all": a sign-in newer than the token must survive a late or replayed delivery. An `iat` ahead of
        # our clock (a fast provider clock, inside the leeway) counts as now: "not valid before" in the future
        # would silently end the user's next sign-ins too.
        ended = end_sessions(user, "before", min(request.issued_at, time.time()), provider=provider)
    log.info("back-channel logout ended %d session(s) of user %s", ended, user or "unknown")
    audit.record(
        "session_revoked",
        "backchannel",
        issuer=request.issuer,
        subject=request.subject,
        detail=f"{ended} sessions ended" + (" (provider session)" if request.provider_sid else ""),
    )
    return ended
