"""What the dashboard shows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from flask import current_app

from clients.downstream import ApiResult, downstream_api
from oidc.provider import ProviderError, UnknownProvider
from sessions.provider import session_provider
from sessions.refresh import SessionTokens

# Keys that must never reach a page, whatever the API sends back (compared without case, "_" or "-").
SECRET_KEYS = frozenset(
    {"accesstoken", "refreshtoken", "idtoken", "token", "authorization", "clientsecret", "password", "bearer"}
)
HIDDEN = "[hidden]"


def dashboard_url() -> str:
    """API_BASE_URL + API_DASHBOARD_PATH, or by default the userinfo endpoint of the session's provider."""
    base: str = current_app.config["API_BASE_URL"]
    if base:
        return (
            urljoin(base, current_app.config["API_DASHBOARD_PATH"])
            if current_app.config["API_DASHBOARD_PATH"]
            else base
        )
    endpoint: str = session_provider().metadata()["userinfo_endpoint"]
    return endpoint


def load_dashboard() -> ApiResult:
    """Fetch the dashboard data as the signed-in user, with every trace of their tokens removed."""
    try:
        url = dashboard_url()
    except (ProviderError, UnknownProvider, KeyError):
        return ApiResult(ok=False, error="The service address is not known yet. Please try again.")
    source = SessionTokens()
    result = downstream_api().get(url, tokens=source)
    if result.ok:
        return ApiResult(ok=True, status=result.status, data=without_secrets(result.data, secret_strings(source.seen)))
    return result


def secret_strings(tokens: set[str]) -> list[str]:
    """The tokens the call used or saw (every generation), longest first, with a JWT's parts on their own."""
    found = list(tokens)
    # A JWT's parts count on their own too (an API may echo just its signature or claims).
    parts = [part for token in found for part in token.split(".") if len(part) >= 16 and "." in token]
    return sorted({*found, *parts}, key=len, reverse=True)


def without_secrets(data: Any, secrets: list[str] | None = None) -> Any:
    """Drop token-like keys at any depth and blank out every occurrence of the user's own tokens.

    The API may echo a token under any name, inside a sentence, or as a key; none of
    it may reach a page or a JSON answer.
    """
    secrets = [secret for secret in (secrets or []) if secret]
    if isinstance(data, dict):
        return {
            _scrubbed(str(key), secrets): without_secrets(value, secrets)
            for key, value in data.items()
            if _normalised(str(key)) not in SECRET_KEYS
        }
    if isinstance(data, list):
        return [without_secrets(item, secrets) for item in data]
    if isinstance(data, str):
        return _scrubbed(data, secrets)
    return data


def _normalised(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _scrubbed(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text
