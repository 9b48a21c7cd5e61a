"""The signed-in user's session: what it holds and how it starts and ends.

Session layout (kept small: every page reads it from Redis):
    created_at   float, seconds since the epoch at sign-in (absolute timeout)
    user         {issuer, subject, email, name, picture}
    profile      {display_name, locale, timezone, website, bio, version}
    tokens       {access_token, refresh_token, expires_at, id_token}
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import current_app, jsonify, redirect, request, session, url_for

from web import wants_json

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> dict[str, Any] | None:
    """The signed-in user's identity claims, or None."""
    return session.get("user")


def current_profile() -> dict[str, Any]:
    """The signed-in user's profile fields."""
    return session.get("profile", {})


def current_tokens() -> dict[str, Any]:
    """The signed-in user's tokens (never rendered to the browser)."""
    return session.get("tokens", {})


def login_required(view: F) -> F:
    """Send anonymous visitors to /login, coming back to the page they asked for."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if wants_json():
                return jsonify(error="sign-in required"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def start_user_session(data: Mapping[str, Any]) -> None:
    """Replace whatever the browser had with a new session under a new id."""
    store = current_app.session_interface
    session.clear()
    store.regenerate(session)
    session.update(data)
    session.setdefault("created_at", time.time())


def end_user_session() -> None:
    """Delete the server-side record and clear the cookie."""
    current_app.session_interface.destroy(session)
