"""Long values of a user's state in pieces of 64 bytes, read in Python as sessions/lua/lib/long_fields.lua reads them.

Redis keeps a hash in its compact listpack encoding only while every value is at most 64 bytes
(`hash-max-listpack-value`); a user's identity and profile are longer, so the scripts store them
as "i", "i2", "i3", ... (and "p", "p2", ...). A value stored whole (before 2026-12, or too long
for pieces) has a first field longer than a piece and reads as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

# Both must match sessions/lua/lib/long_fields.lua (tests/unit/sessions/test_long_fields.py checks it).
PIECE_BYTES = 64
MAX_PIECES = 16


def piece_fields(field: str) -> list[str]:
    """Every field a long value may occupy, first to last ("p", "p2", ... "p16")."""
    return [field, *(f"{field}{number}" for number in range(2, MAX_PIECES + 1))]


def join_pieces(values: Sequence[bytes | None]) -> bytes | None:
    """The whole value from what HMGET returned for `piece_fields(field)`, in that order."""
    first = values[0] if values else None
    if first is None or len(first) != PIECE_BYTES:
        return first
    parts = [first]
    for part in values[1:MAX_PIECES]:
        if part is None:
            break
        parts.append(part)
        if len(part) < PIECE_BYTES:
            break
    return b"".join(parts)
