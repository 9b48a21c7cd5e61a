"""Re-authentication for sensitive actions: `recent_sign_in_required(max_age=N)`.

A view decorated with it runs only if the user authenticated at the provider at most N seconds ago
(the session's auth time: the ID token's `auth_time` at sign-in or at the last re-authentication).
Otherwise the browser goes to the provider with `max_age=N` (and `prompt=login` if asked), keeping its
session. Back at /auth/callback, `confirm_reauthentication` accepts the new ID token only if it is
the same user (iss and sub) and its `auth_time` is at most N seconds old: a provider that ignores
`max_age` and hands back an old authentication is refused with a page that says so, never sent
round again (no redirect loop). Then the session's auth time is updated and the user resumes: a GET
where they were going, a POST at its confirmation page (a POST cannot be replayed: its form and CSRF
token are gone), never at a URL the request chose.

    @bp.post("/account/delete")
    @recent_sign_in_required(max_age=300, confirm_endpoint="account.confirm_delete")
    def delete_account(): ...
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from flask import jsonify, redirect, render_template, request, url_for

from audit import events as audit
from oidc.id_token import LEEWAY_SECONDS, is_number
from oidc.provider import UnknownProvider, oidc_providers
from sessions.identity_links import account_of
from sessions.lifecycle import record_auth_time
from sessions.provider import session_provider
from sessions.store import StoredSession
from sessions.user import current_session, login_required
from signin.authorize import reauthentication_url
from signin.callback import LoginResult
from signin.failures import PROVIDER_GONE, LoginFailed
from signin.redirects import safe_next
from web import wants_json

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def authenticated_within(stored: StoredSession, max_age: int, now: float | None = None) -> bool:
    """True if the session's user authenticated at the provider at most `max_age` seconds ago."""
    if not stored.signed_in or stored.auth_time is None:
        return False
    return (time.time() if now is None else now) - stored.auth_time <= max_age


def is_recent(auth_time: Any, max_age: int, now: float | None = None) -> bool:
    """An ID token's `auth_time` is a number at most `max_age` seconds old (and not ahead of our clock by more
    than the usual leeway)."""
    now = time.time() if now is None else now
    return is_number(auth_time) and now - max_age <= auth_time <= now + LEEWAY_SECONDS


def recent_sign_in_required(
    max_age: int = 300, *, prompt_login: bool = False, confirm_endpoint: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | Any]]:
    """Run the view only after an authentication at most `max_age` seconds old; else re-authenticate first.

    `prompt_login` also asks the provider to show its sign-in form (`prompt=login`) even if it holds a
    recent session. `confirm_endpoint` names the GET page a POST view's user comes back to (by default
    the POST's own URL, answered with GET).
    """
    if not isinstance(max_age, int) or max_age <= 0:
        raise ValueError("max_age must be a positive number of seconds")

    def decorate(view: Callable[P, R]) -> Callable[P, R | Any]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Any:
            stored = current_session()
            if authenticated_within(stored, max_age):
                return view(*args, **kwargs)
            if wants_json():
                return jsonify(error="recent sign-in required", max_age=max_age), 401
            # login_required let only signed-in users this far, so the session has its user.
            return _reauthenticate(stored.user or "", max_age, prompt_login, confirm_endpoint)

        # Anonymous visitors sign in first, as for any protected page.
        return login_required(wrapper)

    return decorate


def _reauthenticate(user: str, max_age: int, prompt_login: bool, confirm_endpoint: str | None) -> Any:
    """Send the browser to the provider for a fresh authentication, to come back where it may resume."""
    if request.method in ("GET", "HEAD"):
        resume = request.full_path.rstrip("?")
    elif confirm_endpoint:
        resume = url_for(confirm_endpoint, **(request.view_args or {}))
    else:
        resume = request.path
    try:
        # At the provider the session signed in with: the identity it must confirm is theirs.
        provider = session_provider()
    except UnknownProvider:
        return render_template("auth/error.html", message=PROVIDER_GONE), 503
    try:
        url = reauthentication_url(provider, safe_next(resume), user, max_age, prompt_login)
    except LoginFailed as failure:
        log.warning("re-authentication could not start: %s", failure.reason)
        return render_template("auth/error.html", message=failure.message), 503
    # 303: a POST's browser follows with a GET.
    return redirect(url, 303)


def confirm_reauthentication(result: LoginResult, now: float | None = None) -> None:
    """Accept the callback's fresh authentication of the signed-in user, or raise LoginFailed.

    Refused, the session stays exactly as it was: still signed in, its auth time unchanged.
    """
    asked: Mapping[str, Any] = result.reauthentication or {}
    stored = current_session()
    if not stored.signed_in or stored.user is None or stored.user != asked.get("user"):
        raise LoginFailed("reauth_signed_out", "the session ended or changed during re-authentication")
    if account_of(result.claims["iss"], result.claims["sub"])[0] != stored.user:
        raise LoginFailed("reauth_other_user", "re-authentication returned another user")
    auth_time = result.claims.get("auth_time")
    if auth_time is None:
        raise LoginFailed("reauth_stale", "re-authentication's ID token has no auth_time")
    if not is_recent(auth_time, int(asked.get("max_age", 0)), now):
        raise LoginFailed("reauth_stale", "re-authentication's auth_time is older than max_age (or ahead of us)")
    provider_sid = result.claims.get("sid")
    provider_sid = provider_sid if isinstance(provider_sid, str) and provider_sid else None
    if not record_auth_time(stored, int(auth_time), provider_sid, int(result.claims["iat"])):
        raise LoginFailed("reauth_signed_out", "the session ended during re-authentication")


def record_reauthentication(result: LoginResult, outcome: str) -> None:
    """The `reauthenticated` event, in the trail of the user who asked for it while their session is this one."""
    stored = current_session()
    asked = result.reauthentication or {}
    if stored.signed_in and stored.user == asked.get("user"):
        audit.record_for_session("reauthenticated", outcome)
    else:
        # Signed out meanwhile, or this browser now holds someone else's session: name no one.
        provider = oidc_providers().named(result.provider)
        audit.record("reauthenticated", outcome, issuer=result.claims.get("iss") or (provider and provider.issuer))
