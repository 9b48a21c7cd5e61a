"""Where the app may send a browser after sign-in: local paths only."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

DEFAULT_TARGET = "/"


def safe_next(target: str | None) -> str:
    """Return `target` if it is a plain local path, else the home page.

    Refused: absolute and protocol-relative URLs, backslashes (browsers read them
    as slashes), control and whitespace characters, and anything that still looks
    like one of those after percent-decoding.
    """
    if not target or len(target) > 2048:
        return DEFAULT_TARGET
    for candidate in (target, unquote(target)):
        if not candidate.startswith("/") or candidate.startswith("//") or "\\" in candidate:
            return DEFAULT_TARGET
        if any(unicodedata.category(char)[0] in "CZ" for char in candidate):
            return DEFAULT_TARGET
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return DEFAULT_TARGET
    return target
