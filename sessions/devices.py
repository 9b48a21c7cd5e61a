"""What the devices page calls a session's device: browser and system, from the User-Agent."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

MAX_USER_AGENT = 512


@lru_cache(maxsize=1024)
def describe_device(user_agent: str | None) -> str:
    """ "Firefox 128 on Windows", "Safari on iOS"…, or "Unknown device" (parsed once per distinct agent)."""
    if not user_agent:
        return "Unknown device"
    parsed = parse(user_agent[:MAX_USER_AGENT])
    browser = parsed.user_agent
    system = parsed.os
    name = None
    if browser is not None and browser.family != "Other":
        name = f"{browser.family} {browser.major}" if browser.major else browser.family
    if system is not None and system.family != "Other":
        name = f"{name or 'A browser'} on {system.family}"
    return (name or "Unknown device")[:80]
