"""The global invariant: codes, tokens and session ids never show in logs or in what the app sends.

Allowed exceptions, each required by a specification:
- the session id in the app's own `Set-Cookie` header;
- the ID token as `id_token_hint` in the redirect to the provider's end-session
  endpoint (OpenID Connect RP-Initiated Logout; issue 2 requires it), sent after
  the session is already deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from tests.security.browser import Browser, Seen
from tests.security.hostile_provider import HostileProvider


def secret_values(provider: HostileProvider, browsers: Iterable[Browser]) -> dict[str, str]:
    """Every secret of the test, mapped to what it is (for readable failures)."""
    found: dict[str, str] = {}
    for value in provider.issued:
        if value.count(".") == 2:
            found[value] = "an ID token"
            found[value.rsplit(".", 1)[1]] = "an ID token signature"
        else:
            found[value] = "a code or token"
    for browser in browsers:
        for session_id in browser.session_ids:
            found[session_id] = "a session id"
    # Short values (an empty `alg: none` signature, test garbage like "a.b.c") are not secrets.
    return {value: kind for value, kind in found.items() if len(value) >= 16}


def leaks_in_logs(log_text: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets the logs contain."""
    return sorted({kind for value, kind in secrets.items() if value in log_text})


def leaks_in_response(seen: Seen, secrets: dict[str, str], end_session_endpoint: str) -> list[str]:
    """Which secrets one app response carries where they must not be."""
    problems = []
    for value, kind in secrets.items():
        if value in seen.body:
            problems.append(f"{kind} in the body of {seen.url}")
        for name, header in seen.headers.items():
            if value not in header:
                continue
            if name.lower() == "set-cookie" and kind == "a session id":
                continue
            is_logout_hint = name.lower() == "location" and header.startswith(end_session_endpoint)
            if is_logout_hint and kind.startswith("an ID token"):
                continue
            problems.append(f"{kind} in the {name} header of {seen.url}")
    return problems


def assert_no_leaks(provider: HostileProvider, browsers: Iterable[Browser], log_text: str) -> None:
    """Fail if any code, token or session id reached the logs or a response it must not."""
    browsers = list(browsers)
    secrets = secret_values(provider, browsers)
    in_logs = leaks_in_logs(log_text, secrets)
    assert not in_logs, f"the logs contain {in_logs}"
    problems = [
        problem
        for browser in browsers
        for seen in browser.seen
        for problem in leaks_in_response(seen, secrets, f"{provider.issuer}/end-session")
    ]
    assert not problems, problems
