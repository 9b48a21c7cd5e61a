"""The dashboard against a real downstream API: a 401 is cured by one refresh or ends the session;
outages never sign anyone out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.integration.pages import texts
from tests.support.browserless import TIMEOUT, session_id, sign_in
from tests.support.downstream_api import DownstreamApi
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

API_TIMEOUT = 1


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory: pytest.TempPathFactory, downstream_api: DownstreamApi) -> Iterator[Stack]:
    """A stack whose dashboard reads the test's API, with a short API timeout."""
    extra_env = {"API_BASE_URL": downstream_api.url, "API_TIMEOUT": str(API_TIMEOUT)}
    running = start_stack(tmp_path_factory.mktemp("downstream-api"), extra_env=extra_env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def signed_in(
    api_stack: Stack, downstream_api: DownstreamApi, browser: requests.Session, subject: str
) -> requests.Session:
    """A browser signed in on the API stack, with the API answering normally and its log empty."""
    assert sign_in(browser, api_stack.web_url, subject, "/profile").status_code == 200
    downstream_api.reset()
    return browser


def access_token(stack: Stack, http: requests.Session) -> str:
    """The access token in the browser's stored session."""
    record = stack.session_record(session_id(http) or "")
    assert record is not None, "the session record is gone"
    return record["tokens"]["access_token"]


def test_a_401_cured_by_one_refresh_is_invisible_to_the_user(
    api_stack: Stack, downstream_api: DownstreamApi, signed_in: requests.Session
) -> None:
    """The API refuses the current token once: the app refreshes, retries once, and shows the data."""
    original = access_token(api_stack, signed_in)
    downstream_api.refuses = lambda token: token == original

    page = signed_in.get(f"{api_stack.web_url}/dashboard", timeout=TIMEOUT)

    assert page.status_code == 200
    assert "from the API" in page.text
    assert len(downstream_api.tokens_seen) == 2
    assert downstream_api.tokens_seen[0] == original
    assert downstream_api.tokens_seen[1] not in ("", original)
    assert access_token(api_stack, signed_in) == downstream_api.tokens_seen[1]


def test_a_401_that_survives_the_refresh_ends_the_session(
    api_stack: Stack, downstream_api: DownstreamApi, signed_in: requests.Session
) -> None:
    """The API refuses every token: one refresh, one retry, then the record is deleted and /login says why."""
    sid = session_id(signed_in)
    downstream_api.refuses = lambda token: True

    answer = signed_in.get(f"{api_stack.web_url}/dashboard", allow_redirects=False, timeout=TIMEOUT)

    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/login?reason=expired")
    assert len(downstream_api.tokens_seen) == 2 and downstream_api.tokens_seen[0] != downstream_api.tokens_seen[1]
    assert api_stack.session_record(sid or "") is None
    login = signed_in.get(f"{api_stack.web_url}{answer.headers['Location']}", timeout=TIMEOUT)
    assert texts(login.text, "login-notice") == ["Your session has ended. Please sign in again."]
    replay = requests.get(f"{api_stack.web_url}/profile", cookies={"gatehouse_session": sid or ""}, timeout=TIMEOUT)
    assert replay.history and replay.history[0].headers["Location"].startswith("/login")


def test_api_errors_and_timeouts_never_sign_anyone_out(
    api_stack: Stack, downstream_api: DownstreamApi, signed_in: requests.Session
) -> None:
    """A 503 and a hung API show an error on the page; the user stays signed in with the same token."""
    token = access_token(api_stack, signed_in)
    downstream_api.status = 503
    failing = signed_in.get(f"{api_stack.web_url}/dashboard", timeout=TIMEOUT)
    assert failing.status_code == 502
    assert texts(failing.text, "api-error") == ["The service is having trouble. Please try again."]

    downstream_api.status = 200
    downstream_api.hold()
    try:
        started = time.monotonic()
        hung = signed_in.get(f"{api_stack.web_url}/dashboard", timeout=TIMEOUT)
        waited = time.monotonic() - started
    finally:
        downstream_api.release()
    assert hung.status_code == 502
    assert texts(hung.text, "api-error") == ["The service took too long to answer. Please try again."]
    assert waited < API_TIMEOUT + 2

    assert signed_in.get(f"{api_stack.web_url}/profile", timeout=TIMEOUT).status_code == 200
    assert access_token(api_stack, signed_in) == token
    assert len(downstream_api.tokens_seen) == 2  # one call each: no refresh, no retry
