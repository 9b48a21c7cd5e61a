"""Tokens never reach the browser: no page, JSON answer or header shows an access, refresh or ID token."""

from __future__ import annotations

import pytest
import requests

from tests.security.browser import Browser
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.security.leaks import assert_no_leaks

pytestmark = pytest.mark.integration

JSON = {"Accept": "application/json"}


def visit_everything(browser: Browser) -> list[requests.Response]:
    """Every page and JSON answer a signed-in user can reach, plus error responses."""
    responses = []
    for path in ("/", "/profile", "/dashboard", "/login?reason=expired", "/auth/failed", "/no-such-page"):
        responses.append(browser.get(path))
        responses.append(browser.get(path, headers=JSON))
    responses += [browser.get("/healthz"), browser.get("/readyz"), browser.get("/logout")]
    token = browser.csrf_token()
    responses.append(browser.post("/profile", data={"csrf_token": token, "display_name": ""}))
    responses.append(browser.post("/profile", data={"csrf_token": token, "display_name": "A"}, headers=JSON))
    return responses


def test_no_response_shows_a_token(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Pages and JSON (dashboard data included, even when the API echoes the token) never show a token."""
    provider.behaviour.userinfo_echoes_token = True
    provider.behaviour.access_token_lifetime = 1  # the dashboard refreshes: new tokens too
    browser = gatehouse.browser()
    browser.sign_in("alice")
    responses = visit_everything(browser)
    assert provider.token_requests("refresh_token") >= 1
    dashboard = browser.get("/dashboard", headers=JSON)
    assert dashboard.status_code == 200 and dashboard.json()["data"]["plan"] == "gold"

    tokens = gatehouse.session_record(browser.session_id)["tokens"]
    secrets = [tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    for response in [*responses, dashboard]:
        for secret in secrets:
            assert secret not in response.text, response.url
            assert all(secret not in value for value in response.headers.values()), response.url
    # And every token the provider ever issued, in every response this browser saw (headers included).
    assert_no_leaks(provider, gatehouse.browsers, "")


def test_sign_out_sends_the_id_token_only_to_the_provider(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The one place the ID token travels is id_token_hint in the end-session redirect, with an empty body."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    id_token = gatehouse.session_record(browser.session_id)["tokens"]["id_token"]
    response = browser.post("/logout", data={"csrf_token": browser.csrf_token()})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{provider.issuer}/end-session?")
    assert f"id_token_hint={id_token}" in response.headers["Location"]
    assert response.text == ""
    assert gatehouse.session_records() == {}
