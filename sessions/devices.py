"""What the devices page calls a session's device: browser and system, from the User-Agent."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

MAX_USER_AGENT = 512


def describe_device(user_agent: str | None) -> str:
    """A name such as "Firefox 128 on Windows" or "Mobile Safari 17 on iOS", else "Unknown device"."""
    return _describe((user_agent or "")[:MAX_USER_AGENT])


@lru_cache(maxsize=1024)
def _describe(user_agent: str) -> str:
    """Parse once per distinct (truncated) agent: parsing costs about a millisecond."""
    if not user_agent:
        return "Unknown device"
    parsed = parse(user_agent)
    browser = parsed.user_agent
    system = parsed.os
    name = None
    if browser is not None and browser.family != "Other":
        name = f"{browser.family} {browser.major}" if browser.major else browser.family
    if system is not None and system.family != "Other":
        name = f"{name or 'A browser'} on {system.family}"
    return (name or "Unknown device")[:80]
