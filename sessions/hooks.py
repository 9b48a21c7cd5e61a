"""Session hooks: the only places that shape session contents.

Two chains, registered per app and run in registration order:

- `before_session_saved(data, claims) -> data`: runs once, at sign-in, just before
  the new session is stored. Hooks may add, change or drop keys. The built-in
  persistence hook is pinned to run last, so it persists what the others produced.
- `on_refresh(trigger, old, new) -> new`: runs whenever a signed-in session changes
  afterwards; trigger is "update" (profile edit) or "token" (access token
  refreshed). Hooks may derive fields or refuse the change by raising
  `SessionChangeRefused`. Login-only work (like the persistence hook above) never
  runs here.

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

from flask import Flask, current_app, session

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
    return (app or current_app).extensions[_EXTENSION]


def propose_refresh(trigger: str, changes: Mapping[str, Any]) -> SessionData:
    """Return what the session would hold after `changes`, as approved by the refresh hooks.

    Nothing is written: the caller applies the result with `apply_refresh` once the
    change is safe to keep (for a profile edit, after its persistence job is queued).
    """
    old = copy.deepcopy(dict(session))
    new = copy.deepcopy(old)
    new.update(copy.deepcopy(dict(changes)))
    return session_hooks().run_on_refresh(trigger, old, new)


def apply_refresh(new: Mapping[str, Any]) -> None:
    """Write an approved session into the stored session (one Redis write at the end of the request)."""
    for key in [key for key in session if key not in new]:
        del session[key]
    session.update(new)


def refresh_session(trigger: str, changes: Mapping[str, Any]) -> SessionData:
    """The session refresh hook: merge `changes` through the hooks and store the result."""
    new = propose_refresh(trigger, changes)
    apply_refresh(new)
    return new
