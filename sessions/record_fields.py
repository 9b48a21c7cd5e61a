"""Short stored forms of a session record's fields (sessions/keys.py lists them), for a smaller hash.

A session's hash is one listpack whose allocation takes the next jemalloc size class, so a few dozen
bytes decide whether a session with an ID token costs 896 or 1,024 bytes (docs/performance.md, "The
session's listpack, byte by byte"). With SESSION_LAYOUT=compact (the default):

- **The handle is not stored.** It is derived from the session's random part: the first 128 bits of
  SHA-256("h:" + random part), in hex. A digest tells nothing of the 256 random bits behind it, so the
  handle is as unrelated to the session id as a random one was. Python derives it (the devices page, and
  a revoke, which finds the member among the user's own listed sessions: sessions/lifecycle.py). A session
  stored before keeps the random handle in its field "h", and that one is its handle.
- **A provider `sid` that is a UUID is stored as a zero byte and its 16 bytes** (17 bytes, not 36).
  Ending sessions by `sid` compares both forms (sessions/lua/end_sessions.lua), for sessions stored before.
  Only a text `sid` of a zero byte and 16 more could read as a UUID's form, and only the provider that
  issued both could make one: it can end its own provider sessions anyway.

SESSION_LAYOUT=whole stores both as the previous version reads them: the `sid` as text, and a random handle
of 22 characters (the form that version accepts on a revoke), which is then the session's handle.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid

# The first byte of a `sid` stored as its UUID's bytes.
UUID_MARK = b"\x00"
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def stored_creation_time(now: float) -> float:
    """A session's creation time as stored: whole milliseconds (14 characters, not 18), rounded down.

    To "not valid before" (compared at full precision) a session can look up to a millisecond older than it
    is, never younger, so nothing signed in before it survives."""
    return math.floor(now * 1000) / 1000


def session_handle(random_part: str) -> str:
    """The handle of the session `random_part`: 32 hex digits, one-way."""
    return hashlib.sha256(f"h:{random_part}".encode()).hexdigest()[:32]


def new_session_handle(random_part: str, *, compact: bool) -> str:
    """The handle of a session starting now: derived when `compact` (and not stored), else random (and stored)."""
    return session_handle(random_part) if compact else secrets.token_urlsafe(16)


def stored_provider_sid(provider_sid: str, *, compact: bool) -> str | bytes:
    """The form a session stores its provider `sid` in: a canonical lowercase UUID as 17 bytes when `compact`."""
    if compact and _CANONICAL_UUID.match(provider_sid):
        return UUID_MARK + uuid.UUID(provider_sid).bytes
    return provider_sid


def provider_sid_text(stored: bytes) -> str:
    """The `sid` a session's stored field holds, in either form."""
    if len(stored) == 1 + 16 and stored.startswith(UUID_MARK):
        return str(uuid.UUID(bytes=stored[1:]))
    return stored.decode()
