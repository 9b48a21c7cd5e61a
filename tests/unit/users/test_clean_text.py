"""`clean_text` keeps a claim storable: no control character (Unicode category C), trimmed, cut to its limit.

Its fast path (a printable string is returned as it is, trimmed and cut) must give exactly what the
character-by-character filter gives, for every kind of character that is not printable but is
kept (separators, no-break spaces) as much as for those that go (NUL, zero-width, private use).
"""

from __future__ import annotations

import unicodedata

import pytest

from users.schema import clean_text


def character_by_character(value: str, limit: int, keep_newlines: bool = False) -> str | None:
    """The filter as written before the fast path: every character of category C goes."""
    allowed = {"\n"} if keep_newlines else set()
    text = "".join(char for char in value if char in allowed or unicodedata.category(char)[0] != "C")
    return text.strip()[:limit].strip() or None


@pytest.mark.parametrize(
    "value",
    [
        "Alice Example",
        "  padded  ",
        "Zoë Ångström 李小龙 🦊",
        "e\u0301",  # a combining accent (category M): printable
        "nul\x00inside",
        "tab\tand\nnewline",
        "zero\u200bwidth",  # Cf: goes
        "bidi\u202eoverride",  # Cf: goes
        "private\ue000use",  # Co: goes
        "no-break\u00a0space",  # Zs, not printable for Python: kept
        "line\u2028separator",  # Zl, not printable for Python: kept
        "\x7f\x9f",  # DEL and a C1 control: nothing left
        "",
        "x" * 300,
    ],
)
@pytest.mark.parametrize("keep_newlines", [False, True])
def test_the_fast_path_cleans_exactly_as_the_character_filter(value: str, keep_newlines: bool) -> None:
    assert clean_text(value, 200, keep_newlines=keep_newlines) == character_by_character(value, 200, keep_newlines)


def test_only_text_is_kept() -> None:
    assert clean_text(42, 10) is None
    assert clean_text(None, 10) is None
