"""Signing out: this session ends (record, tokens, cookie), then the provider's session if it can.

`POST /logout` calls `sign_out`; `flask_login.logout_user()` from the app's own code ends the
session the same way, without the provider's sign-out (`end_session_on_logout`). Each records
one `sign_out` event, before the session ends so the event still names its user and session.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from audit import events as audit
from oidc.provider import Provider, ProviderError, UnknownProvider
from sessions.lifecycle import end_user_session
from sessions.provider import session_provider
from sessions.tokens import read_tokens
from sessions.user import current_session


def sign_out(return_to: str) -> str:
    """End this session; return where the browser goes next: its provider's end-session URL, or `return_to`.

    The provider's URL (RP-Initiated Logout) names the session by the provider's LOGOUT_HINT and
    sends the browser back to `return_to` afterwards.
    """
    tokens = read_tokens()
    try:
        provider: Provider | None = session_provider() if current_session().signed_in else None
    except UnknownProvider:
        provider = None
    if current_session().signed_in:
        audit.record_for_session("sign_out", "user")
    end_user_session()
    hint = provider.logout_hint(tokens.id_token) if provider is not None and tokens is not None else {}
    if provider is None or not hint:
        return return_to
    try:
        metadata = provider.metadata()
    except ProviderError:
        return return_to
    if not metadata.get("end_session_endpoint"):
        return return_to
    url: str = provider.client.create_logout_url(post_logout_redirect_uri=return_to, **hint)["url"]
    return url


def end_session_on_logout(sender: Flask, **extra: Any) -> None:
    """`flask_login.logout_user()` ends this session, as POST /logout does (without the provider's sign-out).

    It records its own `sign_out` event (outcome "app": the app's code signed the user out, not the
    user's sign-out button), before the session ends so the event still names its user and session.
    POST /logout ends the session itself and never comes through here, so it records one event.
    """
    stored = current_session()
    # logout_user leaves a note here for Flask-Login's remember-me cookie hook, which Gatehouse does not run.
    stored.pop("_remember", None)
    if stored.signed_in:
        audit.record_for_session("sign_out", "app")
        end_user_session()
