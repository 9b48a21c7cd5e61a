"""Talk to the development OpenID provider (oidc-provider-mock) the way its test API allows."""

from __future__ import annotations

from typing import Any

import requests

from tests.support.browserless import TIMEOUT


def set_user_claims(provider_url: str, subject: str, claims: dict[str, Any]) -> None:
    """Give a user these claims at the provider (what its ID token and UserInfo will say)."""
    response = requests.put(f"{provider_url}/users/{subject}", json=claims, timeout=TIMEOUT)
    assert response.status_code == 204, response.text


def revoke_tokens(provider_url: str, subject: str) -> None:
    """Revoke every access and refresh token the provider issued to this user."""
    response = requests.post(f"{provider_url}/users/{subject}/revoke-tokens", timeout=TIMEOUT)
    assert response.status_code == 204, response.text


def userinfo_status(provider_url: str, access_token: str) -> int:
    """The status the provider's UserInfo endpoint gives this access token (200: still valid)."""
    response = requests.get(
        f"{provider_url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT
    )
    return response.status_code
