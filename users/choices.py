"""The values profile fields may take."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

LOCALES = (
    ("en", "English"),
    ("en-GB", "English (United Kingdom)"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("fr", "Français"),
    ("it", "Italiano"),
    ("ja", "日本語"),
    ("ko", "한국어"),
    ("nl", "Nederlands"),
    ("pl", "Polski"),
    ("pt-BR", "Português (Brasil)"),
    ("sv", "Svenska"),
    ("tr", "Türkçe"),
    ("uk", "Українська"),
    ("zh-CN", "中文 (简体)"),
)
LOCALE_CODES = frozenset(code for code, _ in LOCALES)


@cache
def timezone_names() -> tuple[str, ...]:
    """Every IANA time zone name, sorted (read once per process)."""
    return tuple(sorted(available_timezones()))


@cache
def timezone_codes() -> frozenset[str]:
    """The same names as a set, for membership tests: `available_timezones()` walks the whole tz
    database on disk at every call (about 7 ms of CPU, most of a first sign-in's callback)."""
    return frozenset(timezone_names())
