"""The downstream API client: nothing of one user's call reaches another's, and no token reaches a page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider, Recorder
from tests.support.downstream_api import DownstreamApi

pytestmark = pytest.mark.integration


@pytest.fixture
def api(downstream_api: DownstreamApi, gatehouse: Gatehouse) -> Iterator[DownstreamApi]:
    """The real local API as the app's API_BASE_URL, answering honestly until a test says otherwise."""
    downstream_api.reset()
    gatehouse.configure(API_BASE_URL=downstream_api.url)
    yield downstream_api
    downstream_api.reset()


def test_one_users_api_cookies_never_reach_another_users_call(
    gatehouse: Gatehouse, provider: HostileProvider, api: DownstreamApi
) -> None:
    """The API sets a cookie on every answer; no later call, of any user, sends one back."""
    api.headers = {"Set-Cookie": "api_session=belongs-to-the-first-caller; Path=/"}
    browsers = []
    for user in ("alice", "bob", "carol", "dave"):
        browser = gatehouse.browser()
        browser.sign_in(user)
        browsers.append(browser)
    for _ in range(2):
        for browser in browsers:
            assert browser.get("/dashboard").status_code == 200
    assert len(api.cookies_seen) == 8
    assert api.cookies_seen == [None] * 8


def test_a_redirect_never_carries_the_bearer_token_elsewhere(
    gatehouse: Gatehouse, provider: HostileProvider, api: DownstreamApi, recorder: Recorder
) -> None:
    """A 302 to another origin is not followed: the page says the answer was unexpected, the target gets nothing."""
    api.redirect_to = f"{recorder.url}/steal"
    browser = gatehouse.browser()
    browser.sign_in("alice")
    page = browser.get("/dashboard")
    assert page.status_code == 502
    assert "unexpected answer" in page.text
    assert recorder.hits == []
    assert browser.signed_in_as() == "Alice"  # a redirect is not a refusal of the token


ECHOES = {
    "nested Authorization header": lambda token: {"request": {"headers": {"Authorization": f"Bearer {token}"}}},
    "camelCase accessToken": lambda token: {"accessToken": token, "name": "Alice"},
    "inside a sentence": lambda token: {"message": f"you called us with {token}, thanks"},
    "as a key": lambda token: {token: "seen"},
    "in a list": lambda token: {"items": ["a", token, "b"]},
    "dash-cased": lambda token: {"x-access-token": token},
    "top-level string": lambda token: f"token={token}",
}


@pytest.mark.parametrize("echo", list(ECHOES))
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_tokens_echoed_by_the_api_never_reach_the_answer(
    gatehouse: Gatehouse, provider: HostileProvider, api: DownstreamApi, echo: str, accept: str
) -> None:
    """Whatever name or shape the echo takes, the page and the JSON answer hold none of the user's tokens."""
    api.payload = ECHOES[echo]
    browser = gatehouse.browser()
    browser.sign_in("alice")
    answer = browser.get("/dashboard", headers={"Accept": accept})
    assert answer.status_code == 200, answer.text[:300]
    (token,) = set(api.tokens_seen)
    assert token and token not in answer.text
    record = gatehouse.session_record(browser.session_id)
    assert record is not None
    for stored in record["tokens"].values():
        if isinstance(stored, str) and stored:
            assert stored not in answer.text
    # The leak check after the test also scans this answer for every token the provider issued.
