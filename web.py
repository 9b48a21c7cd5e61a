"""Response rules every page follows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, Response, current_app, request, session, url_for


def wants_json() -> bool:
    """True when the client asked for JSON rather than a page."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def protect_private_pages(response: Response) -> Response:
    """Pages seen while signed in are private: no caching anywhere, and they vary by cookie.

    Security headers (CSP, nosniff, frame-ancestors…) are added by security.py.
    """
    if getattr(session, "signed_in", False):
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def init_response_policies(app: Flask) -> None:
    """Apply the response rules to every response of the app; template filters for times."""
    app.after_request(protect_private_pages)
    app.add_template_filter(isotime)
    app.add_template_filter(localtime)


def isotime(timestamp: float) -> str:
    """A Unix time as ISO 8601 in UTC (for `<time datetime>`)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def localtime(timestamp: float, zone: str | None) -> str:
    """A Unix time as the user reads it, in their time zone."""
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return datetime.fromtimestamp(timestamp, tz).strftime("%Y-%m-%d %H:%M %Z")


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of this app: from PUBLIC_URL when set, never from a Host header it has not vetted."""
    base: str | None = current_app.config.get("PUBLIC_URL")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)
