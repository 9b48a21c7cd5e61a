"""One browser's sign-ins in progress: state, nonce, PKCE verifier and where to go next, kept in its session."""

from __future__ import annotations

import time
from typing import Any

from flask import session

_STATE_PREFIX = "_login_state_"
LOGIN_STATE_TTL = 10 * 60
# Sign-ins one browser may have in progress at once (tabs); starting another drops the oldest.
MAX_PENDING_SIGN_INS = 10


def store_login_state(state: str, data: dict[str, Any]) -> None:
    """Keep one sign-in attempt's secrets (PKCE verifier, nonce, next) in the session.

    One browser holds at most MAX_PENDING_SIGN_INS attempts: expired ones and then
    the oldest make room, so a client that starts sign-ins in a loop cannot grow its
    session (anonymous sessions also expire after ANONYMOUS_SESSION_TTL).
    """
    now = time.time()
    pending = sorted(
        (entry.get("exp", 0) if isinstance(entry, dict) else 0, key)
        for key, entry in session.items()
        if key.startswith(_STATE_PREFIX)
    )
    for expires_at, key in pending:
        if expires_at < now or len(pending) >= MAX_PENDING_SIGN_INS:
            del session[key]
            pending = [item for item in pending if item[1] != key]
    session[_STATE_PREFIX + state] = {"data": data, "exp": now + LOGIN_STATE_TTL}


def pop_login_state(state: str | None) -> dict[str, Any] | None:
    """Take a sign-in attempt's secrets out of the session: usable once, for ten minutes."""
    if not state:
        return None
    entry = session.pop(_STATE_PREFIX + state, None)
    if not entry or entry.get("exp", 0) < time.time():
        return None
    data: dict[str, Any] = entry["data"]
    return data
