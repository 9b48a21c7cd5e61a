"""Forms: CSRF tokens on every state-changing request, cross-site posts refused, GET changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.browser import Browser
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
PROFILE_EDIT = {"display_name": "Changed", "locale": "en", "timezone": "UTC", "website": "", "bio": ""}


def signed_in(gatehouse: Gatehouse) -> Browser:
    """A browser with Alice signed in."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    return browser


def state_of(gatehouse: Gatehouse, browser: Browser) -> dict[str, Any]:
    """What a state change would alter: who is signed in, their profile and tokens."""
    record = gatehouse.session_record(browser.session_id) or {}
    return {key: record.get(key) for key in ("user", "profile", "tokens", "created_at")}


# Posted by the provider's servers with no browser session: the logout token is the whole check
# (tests/security/test_backchannel_logout.py), so it carries no CSRF token.
SERVER_TO_SERVER = {"/auth/backchannel-logout"}


def state_changing_routes(gatehouse: Gatehouse, examples: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Every (method, path) of the app that accepts an unsafe method (`examples` fill in URL arguments)."""
    found = []
    for rule in gatehouse.app.url_map.iter_rules():
        if rule.rule in SERVER_TO_SERVER:
            continue
        for method in sorted((rule.methods or set()) & UNSAFE_METHODS):
            path = (examples or {}).get(rule.rule, rule.rule)
            assert "<" not in path, f"give {rule.rule} an example URL in this test"
            found.append((method, path))
    return found


def test_every_state_changing_route_requires_a_csrf_token(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Each POST/PUT/PATCH/DELETE route refuses a request without a CSRF token and changes nothing."""
    browser = signed_in(gatehouse)
    other_device = signed_in(gatehouse)
    other_handle = gatehouse.session_record(other_device.session_id)["handle"]
    examples = {
        "/sessions/<handle>/revoke": f"/sessions/{other_handle}/revoke",
        "/account/identities/link/<name>": "/account/identities/link/oidc",
        "/account/identities/<name>/unlink": "/account/identities/oidc/unlink",
    }
    routes = state_changing_routes(gatehouse, examples)
    assert {("POST", "/logout"), ("POST", "/profile"), ("POST", "/sessions/revoke-others")} <= set(routes)
    before = state_of(gatehouse, browser)
    for method, path in routes:
        for token in (None, "forged-token", browser.csrf_token("/profile") + "x"):
            data = dict(PROFILE_EDIT) if token is None else {**PROFILE_EDIT, "csrf_token": token}
            response = browser.http.request(method, gatehouse.url + path, data=data, allow_redirects=False, timeout=10)
            assert response.status_code == 400, (method, path, response.status_code)
            assert "This form has expired" in response.text
    assert state_of(gatehouse, browser) == before
    assert gatehouse.session_record(other_device.session_id) is not None, "a forged post ended another session"


def test_a_csrf_token_from_another_session_is_refused(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """An attacker's own valid token does not work in the victim's session."""
    attacker_token = signed_in(gatehouse).csrf_token("/profile")
    victim = signed_in(gatehouse)
    before = state_of(gatehouse, victim)
    response = victim.post("/profile", data={**PROFILE_EDIT, "csrf_token": attacker_token})
    assert response.status_code == 400
    assert victim.post("/logout", data={"csrf_token": attacker_token}).status_code == 400
    assert state_of(gatehouse, victim) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.2:1", "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
    ],
    ids=["foreign origin", "opaque origin", "sec-fetch cross-site", "same-site other origin", "lying sec-fetch"],
)
@pytest.mark.parametrize("path", ["/profile", "/logout"])
def test_cross_site_posts_are_refused_even_with_a_valid_token(
    gatehouse: Gatehouse, provider: HostileProvider, headers: dict[str, str], path: str
) -> None:
    """A cross-site form post (Origin or Sec-Fetch-Site says so) is refused and changes nothing."""
    browser = signed_in(gatehouse)
    before = state_of(gatehouse, browser)
    token = browser.csrf_token("/profile")
    response = browser.post(path, data={**PROFILE_EDIT, "csrf_token": token}, headers=headers)
    assert response.status_code == 403, response.status_code
    assert state_of(gatehouse, browser) == before
    assert browser.signed_in_as() == "Alice"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Origin": "{origin}"}],
    ids=["no headers", "sec-fetch same-origin", "sec-fetch none", "own origin"],
)
def test_same_origin_posts_work(gatehouse: Gatehouse, provider: HostileProvider, headers: dict[str, str]) -> None:
    """The control: the app's own forms (and clients that send no such headers) still work."""
    browser = signed_in(gatehouse)
    headers = {name: value.format(origin=gatehouse.url) for name, value in headers.items()}
    response = browser.post("/profile", data={**PROFILE_EDIT, "csrf_token": browser.csrf_token()}, headers=headers)
    assert response.status_code == 302, response.text[:300]
    assert gatehouse.session_record(browser.session_id)["profile"]["display_name"] == "Changed"


def test_no_get_request_changes_state(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Visiting every GET page (with form fields in the query) leaves user, profile and tokens as they were."""
    browser = signed_in(gatehouse)
    before = state_of(gatehouse, browser)
    query = {**PROFILE_EDIT, "csrf_token": browser.csrf_token()}
    paths = sorted(
        rule.rule for rule in gatehouse.app.url_map.iter_rules() if "GET" in (rule.methods or ()) and not rule.arguments
    )
    assert {"/", "/profile", "/dashboard", "/login", "/auth/callback", "/logout"} - set(paths) == {"/logout"}
    for path in [*paths, "/logout"]:
        response = browser.get(path, params=query)
        assert response.status_code < 500, (path, response.status_code)
    assert browser.get("/logout").status_code == 405
    assert state_of(gatehouse, browser) == before
    assert browser.signed_in_as() == "Alice"
