"""Response rules every page follows."""

from __future__ import annotations

from flask import Flask, Response, request, session


def wants_json() -> bool:
    """True when the client asked for JSON rather than a page."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def protect_private_pages(response: Response) -> Response:
    """Pages seen while signed in are private: no caching anywhere, and they vary by cookie.

    Security headers (CSP, nosniff, frame-ancestors…) are added by security.py.
    """
    if getattr(session, "accessed", False) and "user" in session:
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def init_response_policies(app: Flask) -> None:
    """Apply the response rules to every response of the app."""
    app.after_request(protect_private_pages)
