"""The signed-in user as the current request sees them: identity, shared profile, tokens.

A session holds only what is its own (app data, created and auth time, handle,
provider sid, device, tokens beside it). The identity and profile belong to the
user and are shared by every session of theirs (sessions/keys.py), read in the
same round trip as the session itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Flask, jsonify, redirect, request, session, url_for

from sessions.store import StoredSession
from users.schema import Identity, Profile, identity_dict, profile_dict
from web import wants_json

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CurrentUser:
    """Who templates see as `current_user`: signed in or not, and their shared identity and profile."""

    identity: Identity | None = None
    profile: Profile | None = None

    @property
    def is_authenticated(self) -> bool:
        """True for a signed-in user."""
        return self.identity is not None

    @property
    def display_name(self) -> str | None:
        """The name the user chose."""
        return self.profile.display_name if self.profile else None

    @property
    def email(self) -> str | None:
        """The provider's e-mail address for the user."""
        return self.identity.email if self.identity else None

    @property
    def locale(self) -> str:
        """The page language."""
        return self.profile.locale if self.profile else "en"


def template_user() -> dict[str, CurrentUser]:
    """Context processor: `current_user` in every template, read from the session already loaded."""
    stored = current_session()
    if not stored.signed_in:
        return {"current_user": CurrentUser()}
    return {"current_user": CurrentUser(stored.identity, stored.profile)}


def current_session() -> StoredSession:
    """The request's session object."""
    stored = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(stored, StoredSession):
        raise TypeError("the session was not opened by Gatehouse's Redis store")
    return stored


def current_user() -> dict[str, Any] | None:
    """The signed-in user's identity claims (issuer, subject, email, name, picture), or None."""
    stored = current_session()
    if not stored.signed_in or stored.identity is None:
        return None
    return identity_dict(stored.identity)


def current_profile() -> dict[str, Any]:
    """The signed-in user's profile fields with their version ({} when signed out)."""
    stored = current_session()
    if not stored.signed_in or stored.profile is None:
        return {}
    return profile_dict(stored.profile, stored.profile_version)


def current_user_tag() -> str | None:
    """The signed-in user's opaque id (the only way logs name a user)."""
    stored = current_session()
    return stored.user if stored.signed_in else None


def session_view() -> dict[str, Any]:
    """What hooks see as "the session": its app data plus the user's identity and profile."""
    stored = current_session()
    return {**dict(stored), "created_at": stored.created_at, "user": current_user(), "profile": current_profile()}


def login_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Send anonymous visitors to /login, coming back to the page they asked for."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Any:
        if current_user() is None:
            if wants_json():
                return jsonify(error="sign-in required"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def init_current_user(app: Flask) -> None:
    """Give every template `current_user`."""
    app.context_processor(template_user)
