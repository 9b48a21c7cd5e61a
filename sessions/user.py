"""The signed-in user as the current request sees them: identity, shared profile, tokens.

A session holds only what is its own (app data, created and auth time, handle,
provider sid, device, tokens beside it). The identity and profile belong to the
user and are shared by every session of theirs (sessions/keys.py), read in the
same round trip as the session itself.

Flask-Login provides `current_user` (in views and templates) and `login_required`, so
code and extensions written for Flask-Login work. Its user is built from that
server-side session (`SessionLoginManager`): no database query and no Redis round
trip of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import flask_login
from flask import Flask, current_app, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, user_accessed

from sessions.store import StoredSession
from users.schema import Identity, Profile, identity_dict, profile_dict
from web import wants_json

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CurrentUser:
    """Flask-Login's `current_user`: signed in or not, with the user's shared identity and profile.

    It follows Flask-Login's user protocol (is_authenticated, is_active, is_anonymous,
    get_id); an anonymous visitor is `CurrentUser()`. `get_id()` is the user's opaque tag
    (users/tags.py), never the provider's subject or e-mail address.
    """

    identity: Identity | None = None
    profile: Profile | None = None
    tag: str | None = None

    @property
    def is_authenticated(self) -> bool:
        """True for a signed-in user."""
        return self.identity is not None

    @property
    def is_active(self) -> bool:
        """True for a signed-in user: a disabled user's sessions are ended, so they are never signed in."""
        return self.identity is not None

    @property
    def is_anonymous(self) -> bool:
        """True for a visitor who is not signed in."""
        return self.identity is None

    def get_id(self) -> str | None:
        """The user's opaque id (None when signed out), as Flask-Login's protocol asks."""
        return self.tag if self.identity is not None else None

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

    @property
    def timezone(self) -> str:
        """The time zone the user reads times in."""
        return self.profile.timezone if self.profile else "UTC"


def session_user() -> CurrentUser:
    """The user of the session the store read for this request (anonymous when not signed in)."""
    stored = current_session()
    if not stored.signed_in:
        return CurrentUser()
    return CurrentUser(stored.identity, stored.profile, stored.user)


class SessionLoginManager(LoginManager):
    """Flask-Login, with the user taken from the server-side session the store already read.

    Flask-Login's own loader looks for the user id `login_user()` keeps in the session,
    then for a remember-me cookie, then asks a `user_loader`; its default session
    protection also hashes the client's address and User-Agent on every request, and
    marks the session changed (a write) when they move. Gatehouse signs users in
    through the provider and keeps who they are in the server-side session, which
    read.lua checks on every request (record exists, user enabled, started after "not
    valid before", within the timeouts). So the user comes from that session: no
    database query, no Redis round trip of its own, and no remember-me cookie is ever
    read or set (a stray `remember_token` cookie changes nothing).
    """

    def __init__(self) -> None:
        super().__init__()
        self.anonymous_user = CurrentUser
        self.login_view = "auth.login"
        self.session_protection = None
        self.unauthorized_handler(send_to_sign_in)

    def _load_user(self) -> None:
        """Flask-Login calls this once per request, the first time `current_user` is read."""
        user_accessed.send(current_app._get_current_object())  # type: ignore[attr-defined]
        self._update_request_context_with_user(session_user())


def send_to_sign_in() -> ResponseReturnValue:
    """Flask-Login's unauthorized handler: to /login, coming back to the page asked for (JSON 401 for API callers).

    `next` is this request's own path and query; /login accepts only local paths anyway.
    """
    if wants_json():
        return jsonify(error="sign-in required"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Flask-Login's `login_required` (typed): anonymous visitors get `send_to_sign_in`."""
    return flask_login.login_required(view)


def current_session() -> StoredSession:
    """The request's session object."""
    stored = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(stored, StoredSession):
        raise TypeError("the session was not opened by Gatehouse's Redis store")
    return stored


def current_identity() -> dict[str, Any] | None:
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


def session_view() -> dict[str, Any]:
    """What hooks see as "the session": its app data plus the user's identity and profile."""
    stored = current_session()
    return {**dict(stored), "created_at": stored.created_at, "user": current_identity(), "profile": current_profile()}


def init_current_user(app: Flask) -> SessionLoginManager:
    """Flask-Login on the app: `current_user` (in templates too) and `login_required`, from the session."""
    manager = SessionLoginManager()
    manager.init_app(app)
    # Flask-Login's one after_request hook writes or clears remember-me cookies; Gatehouse never sets one.
    app.after_request_funcs[None].remove(manager._update_remember_cookie)
    return manager
