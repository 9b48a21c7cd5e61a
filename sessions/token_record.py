"""How a session's tokens are stored: one small Redis string, `<generation>|<msgpack>`.

A Redis hash with any value over 64 bytes (every ID token, every JWT access token) leaves the
compact listpack encoding and costs about 1.5 KB; one string costs its length plus about 60
bytes. Tokens are base64url text, so each dot-separated part is stored as the bytes it
encodes (a quarter smaller) whenever encoding those bytes again gives back exactly the same
text; any other token is stored as it came.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

# Access token, refresh token, expiry (seconds since the epoch), ID token; each may be absent.
_Token = str | list[bytes] | None
_Record = tuple[_Token, _Token, float | None, _Token]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Record)
SEPARATOR = b"|"


@dataclass(frozen=True)
class StoredTokens:
    """One session's tokens as stored, with the generation that fences refreshes."""

    access_token: str | None
    refresh_token: str | None
    expires_at: float | None
    id_token: str | None
    generation: int

    def as_dict(self) -> dict[str, object]:
        """The plain form hooks and templates-free code see."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "id_token": self.id_token,
        }


def _shrink(token: str | None) -> _Token:
    if not token:
        return None
    parts: list[bytes] = []
    for text in token.split("."):
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return token
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
            return token
        parts.append(raw)
    return parts


def _expand(stored: _Token) -> str | None:
    if stored is None or isinstance(stored, str):
        return stored or None
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in stored)


def pack_tokens(tokens: Mapping[str, object], *, keep_id_token: bool = True) -> bytes:
    """The stored form of a token response's tokens (without the generation prefix Lua adds).

    Sign-out needs the ID token only to name the session to the provider (LOGOUT_HINT=id_token).
    """
    expires_at = tokens.get("expires_at")
    return _encoder.encode(
        (
            _shrink(_text_or_none(tokens.get("access_token"))),
            _shrink(_text_or_none(tokens.get("refresh_token"))),
            None if expires_at is None or expires_at == "" else float(str(expires_at)),
            _shrink(_text_or_none(tokens.get("id_token"))) if keep_id_token else None,
        )
    )


def unpack_tokens(stored: bytes) -> StoredTokens:
    """The tokens of a stored `<generation>|<msgpack>` value; raises ValueError when malformed."""
    generation, separator, packed = stored.partition(SEPARATOR)
    if not separator:
        raise ValueError("stored tokens lack their generation")
    try:
        access, refresh, expires_at, id_token = _decoder.decode(packed)
    except msgspec.DecodeError as error:
        raise ValueError(f"stored tokens are not readable: {error}") from error
    return StoredTokens(
        access_token=_expand(access),
        refresh_token=_expand(refresh),
        expires_at=expires_at,
        id_token=_expand(id_token),
        generation=int(generation),
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
