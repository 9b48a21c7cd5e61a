"""What the dashboard shows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from flask import current_app

from clients.downstream import ApiResult, downstream_api
from oidc.provider import ProviderError, oidc_provider
from oidc.tokens import SessionTokens

# Keys that must never reach a page, whatever the API sends back.
SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token", "token", "client_secret", "password"})


def dashboard_url() -> str:
    """API_BASE_URL + API_DASHBOARD_PATH, or by default the provider's userinfo endpoint."""
    base = current_app.config["API_BASE_URL"]
    if base:
        return (
            urljoin(base, current_app.config["API_DASHBOARD_PATH"])
            if current_app.config["API_DASHBOARD_PATH"]
            else base
        )
    return oidc_provider().metadata()["userinfo_endpoint"]


def load_dashboard() -> ApiResult:
    """Fetch the dashboard data as the signed-in user."""
    try:
        url = dashboard_url()
    except (ProviderError, KeyError):
        return ApiResult(ok=False, error="The service address is not known yet. Please try again.")
    result = downstream_api().get(url, tokens=SessionTokens())
    if result.ok:
        return ApiResult(ok=True, status=result.status, data=without_secrets(result.data))
    return result


def without_secrets(data: Any) -> Any:
    """Drop token-like keys at any depth."""
    if isinstance(data, dict):
        return {key: without_secrets(value) for key, value in data.items() if key not in SECRET_KEYS}
    if isinstance(data, list):
        return [without_secrets(item) for item in data]
    return data
