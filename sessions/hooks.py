"""Session hooks: the only places that shape session contents.

Two chains, registered per app and run in registration order:

- `before_session_saved(data, claims) -> data`: runs once, at sign-in, just before
  the new session is stored. `data` holds "user" (identity claims), "profile" (the
  profile every session of the user shares), "tokens" and "created_at"; hooks may
  change those and add keys of their own, which this session keeps. A change to
  "profile" counts only at the user's first sign-in: afterwards the profile is
  shared with their other sessions and changes only through `on_refresh`. The user's
  persistence job is queued after the session is stored, so it saves what the
  hooks produced. `last=True` pins a hook after the others.
- `on_refresh(trigger, old, new) -> new`: runs whenever a signed-in session changes
  afterwards; trigger is "update" (profile edit) or "token" (access token
  refreshed), once per change however many sessions the user has. Hooks may
  derive fields or refuse the change by raising `SessionChangeRefused`.
  Sign-in-only work never runs here.

    hooks = session_hooks(app)

    @hooks.before_session_saved
    def add_team(data, claims):
        data["team"] = claims.get("team", "none")
        return data
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app

from sessions.user import session_view

SessionData = dict[str, Any]
BeforeSavedHook = Callable[[SessionData, Mapping[str, Any]], SessionData | None]
RefreshHook = Callable[[str, Mapping[str, Any], SessionData], SessionData | None]

TRIGGERS = ("update", "token")
_EXTENSION = "gatehouse.session_hooks"


class SessionChangeRefused(Exception):
    """Raised by a refresh hook to veto a change; the message is shown to the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SessionHooks:
    """The ordered hook chains of one app."""

    def __init__(self) -> None:
        self._before_saved: list[BeforeSavedHook] = []
        self._before_saved_last: list[BeforeSavedHook] = []
        self._on_refresh: list[RefreshHook] = []

    def before_session_saved(self, hook: BeforeSavedHook, *, last: bool = False) -> BeforeSavedHook:
        """Register a sign-in hook (usable as a decorator); `last=True` pins it after the others."""
        (self._before_saved_last if last else self._before_saved).append(hook)
        return hook

    def on_refresh(self, hook: RefreshHook) -> RefreshHook:
        """Register a refresh hook (usable as a decorator)."""
        self._on_refresh.append(hook)
        return hook

    def run_before_session_saved(self, data: SessionData, claims: Mapping[str, Any]) -> SessionData:
        """Run the sign-in chain; a hook returning None keeps the data it was given (mutated in place)."""
        for hook in [*self._before_saved, *self._before_saved_last]:
            result = hook(data, claims)
            data = data if result is None else result
        return data

    def run_on_refresh(self, trigger: str, old: Mapping[str, Any], new: SessionData) -> SessionData:
        """Run the refresh chain on a proposed new session; may raise SessionChangeRefused."""
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown refresh trigger {trigger!r}")
        for hook in self._on_refresh:
            result = hook(trigger, old, new)
            new = new if result is None else result
        return new


def init_session_hooks(app: Flask) -> SessionHooks:
    """Give the app its own (empty) hook chains."""
    hooks = SessionHooks()
    app.extensions[_EXTENSION] = hooks
    return hooks


def session_hooks(app: Flask | None = None) -> SessionHooks:
    """The hook chains of the given (or current) app."""
    hooks: SessionHooks = (app or current_app).extensions[_EXTENSION]
    return hooks


def propose_refresh(trigger: str, changes: Mapping[str, Any], *, view: Mapping[str, Any] | None = None) -> SessionData:
    """Return what the session would hold after `changes`, as approved by the refresh hooks.

    `old` and `new` are the session as hooks see it: its app data plus the user's
    identity and shared profile (and, for "token", the tokens). Nothing is
    written: the caller stores the approved result once it is safe to keep (for a
    profile edit, after its persistence job is queued).
    """
    old = copy.deepcopy(dict(view if view is not None else session_view()))
    new = copy.deepcopy(old)
    new.update(copy.deepcopy(dict(changes)))
    return session_hooks().run_on_refresh(trigger, old, new)
