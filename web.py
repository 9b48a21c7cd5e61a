"""Response rules every page follows."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, Response, current_app, message_flashed, request, session, url_for


def wants_json() -> bool:
    """True when the client asked for JSON rather than a page."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def protect_private_pages(response: Response) -> Response:
    """Pages seen while signed in are private: no caching anywhere, and they vary by cookie.

    Security headers (CSP, nosniff, frame-ancestors…) are added by security.py.
    """
    if getattr(session, "signed_in", False):
        response.headers["Cache-Control"] = "no-store"
        vary_on_cookie(response)
    return response


def vary_on_cookie(response: Response) -> None:
    """Add `Cookie` to the response's Vary header, once.

    `response.vary` parses the header into a set and writes it back on every change; most
    responses have no Vary yet, and then the header is just added.
    """
    current = response.headers.get("Vary")
    if current is None:
        response.headers.add("Vary", "Cookie")
    elif "cookie" not in {item.strip().lower() for item in current.split(",")}:
        response.vary.add("Cookie")


@dataclass(frozen=True)
class AppHooks:
    """An app's app-wide request hooks at one moment, or those an extension added since."""

    before: tuple[Callable[..., Any], ...]
    after: tuple[Callable[..., Any], ...]
    teardown: tuple[Callable[..., Any], ...]

    @classmethod
    def of(cls, app: Flask) -> AppHooks:
        """The hooks the app has now."""
        return cls(
            tuple(app.before_request_funcs.get(None, ())),
            tuple(app.after_request_funcs.get(None, ())),
            tuple(app.teardown_request_funcs.get(None, ())),
        )

    def added_since(self, app: Flask) -> AppHooks:
        """The hooks the app has now that it did not have at `self`."""
        now = AppHooks.of(app)
        return AppHooks(
            tuple(hook for hook in now.before if hook not in self.before),
            tuple(hook for hook in now.after if hook not in self.after),
            tuple(hook for hook in now.teardown if hook not in self.teardown),
        )

    def remove_from(self, app: Flask) -> None:
        """Take these hooks off the app's every request."""
        for hooks, registered in (
            (self.before, app.before_request_funcs),
            (self.after, app.after_request_funcs),
            (self.teardown, app.teardown_request_funcs),
        ):
            for hook in hooks:
                registered[None].remove(hook)

    def finish(self, response: Response, endpoints: Collection[str]) -> Response:
        """On `endpoints` only: the after-request hooks (in Flask's order), then the teardown ones."""
        if request.endpoint not in endpoints:
            return response
        for hook in reversed(self.after):
            response = hook(response)
        for hook in reversed(self.teardown):
            hook(None)
        return response


# Flash messages a session keeps until a page shows them: a client that never follows its redirects
# (300 POSTs, 300 messages) cannot grow its session record past these.
MAX_PENDING_FLASHES = 5


def cap_pending_flashes(sender: Flask, message: str, category: str) -> None:
    """Keep only the newest MAX_PENDING_FLASHES messages waiting to be shown (Flask's message_flashed signal)."""
    pending = session.get("_flashes")
    if isinstance(pending, list) and len(pending) > MAX_PENDING_FLASHES:
        session["_flashes"] = pending[-MAX_PENDING_FLASHES:]


def init_response_policies(app: Flask) -> None:
    """Apply the response rules to every response of the app; template filters for times."""
    message_flashed.connect(cap_pending_flashes, sender=app)
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
