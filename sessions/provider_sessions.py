"""What back-channel logout needs of the store: whose sessions a provider session started, and used tokens.

A logout token may name only the provider's session (`sid`); sign-in remembers which user it
belongs to. A token's `jti` is marked used for as long as the token could be accepted, so a
replayed token is refused.
"""

from __future__ import annotations

from typing import cast

from connections import session_redis
from sessions import keys


def user_for_provider_session(issuer: str, provider_sid: str) -> str | None:
    """The user whose sessions a provider session started (None if unknown or expired)."""
    value = cast(bytes | None, session_redis().get(keys.provider_session_key(issuer, provider_sid)))
    return value.decode() if value else None


def mark_logout_token_used(issuer: str, jti: str, seconds: int) -> bool:
    """Mark a logout token used for `seconds`; False if it was already used."""
    return bool(session_redis().set(keys.logout_token_key(issuer, jti), 1, nx=True, ex=seconds))


def unmark_logout_token(issuer: str, jti: str) -> None:
    """Let a logout token be used again (its sessions could not be ended); raises RedisError."""
    session_redis().delete(keys.logout_token_key(issuer, jti))
