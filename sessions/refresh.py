"""The signed-in session's tokens: expiry, single-flight refresh, and the "token" refresh hook.

However many requests (in however many processes) find a session's access token
expiring, or get a 401 with it, exactly one redeems the refresh token: it holds
the session's lease (sessions/tokens.py) and stores the result fenced by the
tokens' generation. The others wait a bounded time for that result. A refresh is
attempted a little before expiry, while the old token still works, so normally
nobody waits at all. A provider's `invalid_grant` ends the session only if no
other request has refreshed meanwhile (a lost race is not a sign-out).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from flask import current_app, session

import metrics
from clients.downstream import TokenUnavailable
from oidc.id_token import IdTokenError
from oidc.provider import ProviderError, UnknownProvider
from oidc.tokens import token_fields
from sessions import tokens as stored_tokens
from sessions.hooks import SessionChangeRefused, propose_refresh
from sessions.identity_links import account_of
from sessions.provider import session_provider
from sessions.token_record import StoredTokens
from sessions.user import current_session, session_view

log = logging.getLogger(__name__)

# A token this close to its expiry is treated as expired (clock skew, time in flight). Refreshing ahead of it,
# while the old token still works, starts TOKEN_REFRESH_AHEAD seconds before expiry (a value below this margin
# leaves no such window: a token is refreshed once it counts as expired).
EXPIRY_MARGIN_SECONDS = 10
# How often a request waiting for another's refresh looks for its result.
WAIT_POLL_SECONDS = 0.05


class TokenRefreshFailed(TokenUnavailable):
    """A refresh did not give a usable token; `curable` is False when only a new sign-in helps."""


def lease_seconds() -> float:
    """How long a lease lasts unless renewed: longer than the provider call can take (its holder renews it
    while the whole refresh runs, so a slow key fetch or hook does not let it lapse)."""
    return 2 * float(current_app.config["OIDC_TIMEOUT"]) + 2


class SessionTokens:
    """The token source the downstream client uses: the current session's tokens, refreshed single-flight."""

    def __init__(self) -> None:
        # Every token value this request has read or stored, so answers can be scrubbed of them
        # without reading Redis again.
        self.seen: set[str] = set()

    def _read(self) -> StoredTokens | None:
        """The stored tokens (one round trip), remembered in `seen`."""
        tokens = stored_tokens.read_tokens()
        if tokens is not None:
            self._remember(tokens.as_dict())
        return tokens

    def _remember(self, tokens: dict[str, Any]) -> None:
        for name in ("access_token", "refresh_token", "id_token"):
            value = tokens.get(name)
            if isinstance(value, str) and value:
                self.seen.add(value)

    def current(self) -> str | None:
        """A usable access token, refreshed first when it is expiring."""
        tokens = self._read()
        if tokens is None:
            return None
        if tokens.expires_at is None or not tokens.refresh_token:
            return tokens.access_token
        remaining = tokens.expires_at - time.time()
        if remaining > max(current_app.config["TOKEN_REFRESH_AHEAD"], EXPIRY_MARGIN_SECONDS):
            return tokens.access_token
        if remaining > EXPIRY_MARGIN_SECONDS:
            # Still usable: refresh only if nobody else is, and keep the old token if that fails.
            owner = stored_tokens.take_lease(lease_seconds())
            if owner is None:
                return tokens.access_token
            try:
                return self._redeem(tokens, owner)
            except TokenRefreshFailed as error:
                if not error.curable:
                    raise
                return tokens.access_token
        return self._refresh_or_wait(tokens)

    def refresh(self, rejected: str | None = None) -> str:
        """A new access token after the API refused `rejected`: another request's, or one we redeem."""
        tokens = self._read()
        if tokens is None:
            raise TokenRefreshFailed("the session has ended", curable=False)
        if rejected is not None and tokens.access_token and tokens.access_token != rejected:
            return tokens.access_token  # someone refreshed since that call was made
        if not tokens.refresh_token:
            raise TokenRefreshFailed("no refresh token", curable=False)
        return self._refresh_or_wait(tokens)

    def _refresh_or_wait(self, tokens: StoredTokens) -> str:
        """Redeem as the lease holder, or wait for the holder's result; bounded in all."""
        deadline = time.monotonic() + lease_seconds() + 1
        while True:
            owner = stored_tokens.take_lease(lease_seconds())
            if owner is not None:
                return self._redeem(tokens, owner)
            latest = self._wait_for_refresh(tokens.generation, deadline)
            if latest.generation != tokens.generation and latest.access_token:
                return latest.access_token
            # The lease went with no new tokens: its holder found them refreshed already (by a generation
            # this request had not seen) or gave up. Take the lease ourselves, while time remains.
            if time.monotonic() >= deadline:
                raise TokenRefreshFailed("another request's refresh did not finish", curable=True)
            tokens = latest

    def _wait_for_refresh(self, generation: int, deadline: float) -> StoredTokens:
        """Wait while another request holds the lease; the stored tokens once it is gone or new ones are stored."""
        while time.monotonic() < deadline:
            time.sleep(WAIT_POLL_SECONDS)
            tokens = self._read()
            if tokens is None:
                raise TokenRefreshFailed("the session has ended", curable=False)
            if tokens.generation != generation or not stored_tokens.lease_held():
                return tokens
        raise TokenRefreshFailed("another request's refresh did not finish", curable=True)

    def _redeem(self, read: StoredTokens, owner: str) -> str:
        """Trade the refresh token for new tokens, as the lease holder, and store them fenced."""
        with stored_tokens.held_lease(owner, lease_seconds()):
            tokens = self._read()
            if tokens is None:
                raise TokenRefreshFailed("the session has ended", curable=False)
            if tokens.generation != read.generation and tokens.access_token:
                return tokens.access_token  # refreshed just before we took the lease
            try:
                fresh = self._fetch(tokens)
            except _RaceLost as lost:
                return str(lost.latest.access_token)
            merged = {**tokens.as_dict(), **{key: value for key, value in fresh.items() if value is not None}}
            merged = self._approved(tokens, merged)
            self._remember(merged)
            outcome = stored_tokens.commit_tokens(tokens.generation, owner, merged)
            if outcome < 0:
                raise TokenRefreshFailed("the session ended during the refresh", curable=False)
            if outcome == 0:
                latest = self._read()
                if latest is not None and latest.access_token:
                    return latest.access_token
            return str(merged["access_token"])

    def _fetch(self, tokens: StoredTokens) -> dict[str, Any]:
        """One call to the session's provider's token endpoint with the refresh token."""
        try:
            provider = session_provider()
        except UnknownProvider as error:
            metrics.token_refresh("refused")
            raise TokenRefreshFailed("the session's provider is not configured any more", curable=False) from error
        try:
            # types-Authlib leaves fetch_access_token unannotated; it returns the token response (a dict).
            response: dict[str, Any] = provider.client.fetch_access_token(  # type: ignore[no-untyped-call]
                grant_type="refresh_token", refresh_token=tokens.refresh_token
            )
        except OAuthError as error:
            latest = self._read()
            if latest is not None and latest.generation != tokens.generation:
                # Another request refreshed first; its tokens are the live ones.
                metrics.token_refresh("race_lost")
                raise _RaceLost(latest) from error
            # invalid_grant and friends: the provider has ended this grant.
            log.info("token refresh refused by the provider: %s", error.error)
            metrics.token_refresh("refused")
            raise TokenRefreshFailed("refresh refused", curable=False) from error
        except (requests.RequestException, ProviderError) as error:
            log.warning("token refresh failed: %s", type(error).__name__)
            metrics.token_refresh("unreachable")
            raise TokenRefreshFailed("provider unreachable", curable=True) from error
        fresh = token_fields(response)
        if not fresh["access_token"]:
            metrics.token_refresh("rejected")
            raise TokenRefreshFailed("no access token in refresh response", curable=False)
        if fresh["id_token"]:
            self._check_same_user(fresh["id_token"])
        metrics.token_refresh("success")
        return fresh

    @staticmethod
    def _approved(tokens: StoredTokens, merged: dict[str, Any]) -> dict[str, Any]:
        """Run the "token" refresh hooks; keys they derive besides the tokens stay with this session."""
        view = {**session_view(), "tokens": tokens.as_dict()}
        try:
            approved = propose_refresh("token", {"tokens": merged}, view=view)
        except SessionChangeRefused as refusal:
            raise TokenRefreshFailed(
                f"a refresh hook refused the new tokens: {refusal.message}", curable=False
            ) from refusal
        for key, value in approved.items():
            if key not in ("created_at", "user", "profile", "tokens") and session.get(key) != value:
                session[key] = value
        return dict(approved.get("tokens") or merged)

    @staticmethod
    def _check_same_user(id_token: str) -> None:
        """A refreshed ID token must name the session's account (by its own identity, or one linked into it)."""
        try:
            claims = session_provider().validate_id_token(id_token, nonce=None)
        except (IdTokenError, ProviderError) as error:
            metrics.token_refresh("rejected")
            raise TokenRefreshFailed(f"refreshed ID token rejected: {error}", curable=False) from error
        if account_of(claims["iss"], claims["sub"])[0] != current_session().user:
            metrics.token_refresh("rejected")
            raise TokenRefreshFailed("refreshed ID token names another user", curable=False)


class _RaceLost(Exception):
    """The provider refused our redeem because another request redeemed first."""

    def __init__(self, latest: StoredTokens):
        super().__init__("another request refreshed first")
        self.latest = latest
