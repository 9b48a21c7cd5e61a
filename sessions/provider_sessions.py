"""What back-channel logout needs of the store: whose sessions a provider session started, and used tokens.

A logout token may name only the provider's session (`sid`); sign-in names its user in that
provider session's lookup, which keeps every user a reused `sid` signed in. A logout is recorded
there too, so a sign-in of that provider session still completing ends its own session
(sessions/lifecycle.py). A token's `jti` is marked used for as long as the token could be
accepted, so a replayed token is refused.
"""

from __future__ import annotations

from flask import current_app

from connections import session_redis
from sessions import keys
from sessions.store import session_store


def provider_session_logged_out(
    issuer: str, provider_sid: str, issued_at: float, seconds: int, user: str = ""
) -> list[str]:
    """Record that the provider logged out a provider session (for one user, or all); the users to sign out.

    `issued_at` is the logout token's `iat` (the provider's clock, compared with ID tokens' `iat`);
    the record is kept at least `seconds`, as long as an ID token issued before it could still be
    accepted. Raises RedisError.
    """
    store = session_store(current_app)
    lookup = keys.provider_session_key(issuer, provider_sid)
    users = store.scripts.replicated(
        store.scripts.provider_session, keys=[lookup], args=["out", user, issued_at, seconds]
    )
    return [name.decode() for name in users]


def mark_logout_token_used(issuer: str, jti: str, seconds: int) -> bool:
    """Mark a logout token used for `seconds`; False if it was already used."""
    return bool(session_redis().set(keys.logout_token_key(issuer, jti), 1, nx=True, ex=seconds))


def unmark_logout_token(issuer: str, jti: str) -> None:
    """Let a logout token be used again (its sessions could not be ended); raises RedisError."""
    session_redis().delete(keys.logout_token_key(issuer, jti))
