"""Where the app may send a browser after sign-in: local paths only."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

DEFAULT_TARGET = "/"
MAX_LENGTH = 2048
# Percent-decoding rounds to look through (%252F -> %2F -> /); deeper nesting is refused.
MAX_DECODING_ROUNDS = 4


def safe_next(target: str | None) -> str:
    """Return `target` if it is a plain local path, else the home page.

    Refused: absolute and protocol-relative URLs, backslashes (browsers read them
    as slashes), control, invisible and white-space characters, and anything that
    would become one of those after percent-decoding, however many times a proxy
    or framework decodes it. The one thing decoding may reveal that the raw target
    may not hold is a space inside the path ("/url%20with%20spaces/").
    """
    if not target or len(target) > MAX_LENGTH or not _is_local_path(target, allow_spaces=False):
        return DEFAULT_TARGET
    decoded = target
    for _ in range(MAX_DECODING_ROUNDS):
        previous, decoded = decoded, unquote(decoded)
        if decoded == previous:
            return target
        if not _is_local_path(decoded, allow_spaces=True):
            return DEFAULT_TARGET
    return DEFAULT_TARGET


def _is_local_path(candidate: str, *, allow_spaces: bool) -> bool:
    """A path on this site: one leading slash, no backslash, no scheme or host, no hidden characters."""
    if not candidate.startswith("/") or candidate.startswith("//") or "\\" in candidate:
        return False
    for char in candidate:
        category = unicodedata.category(char)
        if category[0] == "C" or (category[0] == "Z" and not (allow_spaces and char == " ")):
            return False
    parts = urlsplit(candidate)
    return not parts.scheme and not parts.netloc
