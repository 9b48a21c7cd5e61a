"""The signed-in user's tokens: expiry, refresh, and the refresh hook."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError

from clients.downstream import TokenUnavailable
from oidc.id_token import IdTokenError, validate_id_token
from oidc.provider import ProviderError, oidc_provider
from sessions.hooks import refresh_session
from sessions.user import current_tokens, current_user

log = logging.getLogger(__name__)

EXPIRY_MARGIN_SECONDS = 30


class TokenRefreshFailed(TokenUnavailable):
    """A refresh did not give a usable token; `curable` is False when only a new sign-in helps."""


def token_fields(token: dict[str, Any]) -> dict[str, Any]:
    """The parts of a token response Gatehouse keeps in the session."""
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in") is not None:
        expires_at = time.time() + int(token["expires_in"])
    return {
        "access_token": token.get("access_token"),
        "refresh_token": token.get("refresh_token"),
        "expires_at": expires_at,
        "id_token": token.get("id_token"),
    }


class SessionTokens:
    """The token source the downstream client uses: the current session's tokens."""

    def current(self) -> str | None:
        """A usable access token, refreshed first if it has expired."""
        tokens = current_tokens()
        expires_at = tokens.get("expires_at")
        if expires_at is not None and time.time() >= expires_at - EXPIRY_MARGIN_SECONDS and tokens.get("refresh_token"):
            return self.refresh()
        return tokens.get("access_token")

    def refresh(self) -> str:
        """Trade the refresh token for new tokens and store them through the refresh hook."""
        tokens = current_tokens()
        if not tokens.get("refresh_token"):
            raise TokenRefreshFailed("no refresh token", curable=False)
        provider = oidc_provider()
        try:
            response = provider.client.fetch_access_token(
                grant_type="refresh_token", refresh_token=tokens["refresh_token"]
            )
        except OAuthError as error:
            # invalid_grant and friends: the provider has ended this grant.
            log.info("token refresh refused by the provider: %s", error.error)
            raise TokenRefreshFailed("refresh refused", curable=False) from error
        except (requests.RequestException, ProviderError) as error:
            log.warning("token refresh failed: %s", type(error).__name__)
            raise TokenRefreshFailed("provider unreachable", curable=True) from error

        fresh = token_fields(response)
        if not fresh["access_token"]:
            raise TokenRefreshFailed("no access token in refresh response", curable=False)
        if fresh["id_token"]:
            self._check_same_user(fresh["id_token"])
        merged = {**tokens, **{key: value for key, value in fresh.items() if value is not None}}
        refresh_session("token", {"tokens": merged})
        return merged["access_token"]

    @staticmethod
    def _check_same_user(id_token: str) -> None:
        """A refreshed ID token must name the same user at the same issuer."""
        provider = oidc_provider()
        user = current_user() or {}
        try:
            claims = validate_id_token(
                id_token,
                keys=provider.keys,
                issuer=provider.issuer,
                client_id=provider.client_id,
                algorithms=provider.algorithms(),
                nonce=None,
            )
        except (IdTokenError, ProviderError) as error:
            raise TokenRefreshFailed(f"refreshed ID token rejected: {error}", curable=False) from error
        if claims["sub"] != user.get("subject") or claims["iss"] != user.get("issuer"):
            raise TokenRefreshFailed("refreshed ID token names another user", curable=False)
