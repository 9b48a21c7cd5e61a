"""Concurrent requests on one session: no change is lost, none comes back from the dead.

Against gunicorn (2 processes x 4 threads) and a real Redis: 50 parallel requests
with a profile edit among them, a request still in flight at sign-out, and two
sign-ins started in two tabs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sessions import keys
from tests.reliability.helpers import start_reliability_stack
from tests.support.browserless import SESSION_COOKIE, csrf_token, sign_in
from tests.support.downstream_api import DownstreamApi
from tests.support.polling import wait_until
from tests.support.redis_monitor import recording
from tests.support.session_records import read_session
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

LOGIN_STATE_PREFIX = "_login_state_"
PARALLEL = 50
# Below MAX_PENDING_SIGN_INS (signin/login_state.py), the bound on sign-ins one browser has in progress.
SIGN_IN_STARTS = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, downstream_api: DownstreamApi) -> Iterator[Stack]:
    """Provider, gunicorn, one worker; sessions on their own Redis; sign-in rate limits out of the way."""
    running = start_reliability_stack(
        tmp_path_factory.mktemp("sessions"),
        separate_queue=True,
        provider=True,
        web=1,
        workers=1,
        settings={
            "API_BASE_URL": downstream_api.url,
            "LOGIN_RATE_LIMIT": "10000 per minute",
            "CALLBACK_RATE_LIMIT": "10000 per minute",
        },
    )
    try:
        yield running
    finally:
        running.stop()


def stored(stack: Stack, sid: str) -> dict[str, Any] | None:
    """The session record in Redis, decoded, or None."""
    with stack.sessions.client() as client:
        return read_session(client, sid)


def as_browser(sid: str) -> dict[str, str]:
    """The Cookie header of a browser holding session `sid` (each request sends it as is)."""
    return {"Cookie": f"{SESSION_COOKIE}={sid}"}


def all_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Send every request at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(calls))

    def send(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def signed_in(stack: Stack, subject: str) -> tuple[requests.Session, str, str]:
    """A browser signed in as `subject` that has seen /profile: (browser, session id, CSRF token)."""
    http = requests.Session()
    page = sign_in(http, stack.web_url, subject, next_path="/profile")
    assert page.status_code == 200, page.text
    return http, http.cookies[SESSION_COOKIE], csrf_token(page.text)


def test_fifty_parallel_requests_lose_no_change(stack: Stack) -> None:
    web = stack.web_url
    http, sid, token = signed_in(stack, "parallel")
    edit = {"display_name": "Edited In Parallel", "locale": "de", "timezone": "Europe/Berlin", "website": "", "bio": ""}

    calls: list[Callable[[], requests.Response]] = [
        lambda: requests.post(
            f"{web}/profile",
            data={**edit, "csrf_token": token},
            headers=as_browser(sid),
            allow_redirects=False,
            timeout=30,
        )
    ]
    # Each of these starts a sign-in, which adds its own OAuth state to the session.
    calls += [
        lambda index=index: requests.get(
            f"{web}/login", params={"next": f"/tab-{index}"}, headers=as_browser(sid), allow_redirects=False, timeout=30
        )
        for index in range(SIGN_IN_STARTS)
    ]
    pages = ["/profile", "/", "/dashboard"]
    calls += [
        lambda index=index: requests.get(
            f"{web}{pages[index % 3]}", headers=as_browser(sid), allow_redirects=False, timeout=30
        )
        for index in range(PARALLEL - len(calls))
    ]
    responses = all_at_once(calls)

    assert responses[0].status_code == 302, responses[0].text
    assert all(response.status_code == 302 for response in responses[1 : 1 + SIGN_IN_STARTS])
    assert all(response.status_code == 200 for response in responses[1 + SIGN_IN_STARTS :])
    record = stored(stack, sid)
    assert record is not None
    assert record["profile"]["display_name"] == "Edited In Parallel"
    assert (record["profile"]["locale"], record["profile"]["timezone"]) == ("de", "Europe/Berlin")
    started = {key for key in record if key.startswith(LOGIN_STATE_PREFIX)}
    assert len(started) == SIGN_IN_STARTS  # not one sign-in attempt was clobbered
    page = http.get(f"{web}/profile", timeout=10)
    assert 'value="Edited In Parallel"' in page.text
    # The flash survived too: pages that read the session after the edit showed it.
    assert any("Your profile has been saved." in response.text for response in [*responses, page])


def test_a_request_in_flight_at_sign_out_does_not_revive_the_session(
    stack: Stack, downstream_api: DownstreamApi
) -> None:
    web = stack.web_url
    http, sid, token = signed_in(stack, "in-flight")
    # A profile edit leaves a flash message in the session; the next page to render pops it.
    saved = http.post(
        f"{web}/profile",
        data={"display_name": "Flash Pending", "locale": "en", "timezone": "UTC", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert saved.status_code == 302

    downstream_api.hold()
    results: dict[str, requests.Response] = {}
    slow = threading.Thread(
        target=lambda: results.setdefault(
            "dashboard", requests.get(f"{web}/dashboard", headers=as_browser(sid), timeout=60)
        )
    )
    slow.start()
    try:
        assert downstream_api.entered.wait(timeout=20)  # the dashboard read the session and now waits for the API
        logout = http.post(f"{web}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
        assert logout.status_code == 302
        assert stored(stack, sid) is None
    finally:
        downstream_api.release()
        slow.join(timeout=60)

    dashboard = results["dashboard"]
    assert dashboard.status_code == 200  # it rendered (and popped the flash: a session change)...
    assert stored(stack, sid) is None  # ...but did not write the ended session back
    assert sid not in dashboard.headers.get("Set-Cookie", "")
    after = requests.get(f"{web}/profile", headers=as_browser(sid), allow_redirects=False, timeout=10)
    assert after.status_code == 302
    assert urlsplit(after.headers["Location"]).path == "/login"


def provider_approves(login: requests.Response, subject: str) -> str:
    """Take a /login redirect through the provider; returns the callback URL it sends the browser to."""
    consent = requests.post(login.headers["Location"], data={"sub": subject}, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    return consent.headers["Location"]


def assert_completed_or_refused_cleanly(response: requests.Response, next_path: str, web: str, sid: str) -> bool:
    """A callback either signs in (redirect to its page) or fails with the friendly error page; True if signed in."""
    assert response.status_code in (302, 303), response.text
    target = urlsplit(response.headers["Location"])
    if target.path == next_path:
        return True
    # The failure page the callback sends the browser to (it keeps the code out of the address bar).
    page = requests.get(
        f"{response.url.split('/auth/')[0]}{target.path}?{target.query}", headers=as_browser(sid), timeout=10
    )
    assert page.status_code == 400, page.text
    assert "sign in again" in page.text.lower()
    return False


def test_two_tabs_signing_in_do_not_clobber_each_others_state(stack: Stack) -> None:
    web = stack.web_url
    first = requests.get(f"{web}/login", params={"next": "/tab-a"}, allow_redirects=False, timeout=10)
    sid = first.cookies[SESSION_COOKIE]
    tab_b, tab_c = all_at_once(
        [
            lambda: requests.get(
                f"{web}/login", params={"next": "/tab-b"}, headers=as_browser(sid), allow_redirects=False, timeout=10
            ),
            lambda: requests.get(
                f"{web}/login", params={"next": "/tab-c"}, headers=as_browser(sid), allow_redirects=False, timeout=10
            ),
        ]
    )
    states = {parse_qs(urlsplit(r.headers["Location"]).query)["state"][0] for r in (first, tab_b, tab_c)}
    record = stored(stack, sid)
    assert record is not None
    assert {key.removeprefix(LOGIN_STATE_PREFIX) for key in record if key.startswith(LOGIN_STATE_PREFIX)} == states

    # Tabs B and C come back at the same moment: both sign in.
    callback_b, callback_c = provider_approves(tab_b, "tab-user"), provider_approves(tab_c, "tab-user")
    done_b, done_c = all_at_once(
        [
            lambda: requests.get(callback_b, headers=as_browser(sid), allow_redirects=False, timeout=10),
            lambda: requests.get(callback_c, headers=as_browser(sid), allow_redirects=False, timeout=10),
        ]
    )
    completed = [
        assert_completed_or_refused_cleanly(done_b, "/tab-b", web, sid),
        assert_completed_or_refused_cleanly(done_c, "/tab-c", web, sid),
    ]
    assert any(completed)
    browser_sid = (done_c if completed[1] else done_b).cookies[SESSION_COOKIE]

    # Tab A comes back last, with the cookie the browser now holds: a clean refusal, the user stays signed in.
    late = requests.get(
        provider_approves(first, "tab-user"), headers=as_browser(browser_sid), allow_redirects=False, timeout=10
    )
    assert not assert_completed_or_refused_cleanly(late, "/tab-a", web, browser_sid)
    profile = requests.get(f"{web}/profile", headers=as_browser(browser_sid), allow_redirects=False, timeout=10)
    assert profile.status_code == 200
    assert stored(stack, sid) is None  # the pre-sign-in session was replaced (new id)


def test_unchanged_sessions_are_read_once_and_never_rewritten(stack: Stack) -> None:
    web = stack.web_url
    http, _, _ = signed_in(stack, "reader")
    # Let every job finish: the last thing a persistence job does is confirm the user's state in this Redis.
    user_key = keys.user_key(keys.user_tag(stack.provider_url, "reader"))
    with stack.sessions.client() as client:
        wait_until(lambda: client.hget(user_key, "ok") == b"1", timeout=30, what="the sign-in job to finish")
    stack.wait_for_jobs()

    pages = ("/profile", "/", "/profile", "/") * 5
    for path in pages:  # each web process loads its scripts on first use (SCRIPT LOAD)
        assert http.get(f"{web}{path}", timeout=10).status_code == 200
    with recording(stack.sessions.port) as redis:
        for path in pages:
            assert http.get(f"{web}{path}", timeout=10).status_code == 200
    # One round trip per page (the read script), and nothing written but the sliding expiry.
    assert redis.sent_names() == ["EVALSHA"] * len(pages), redis.sent
    written = [command for command in redis.scripted if not command.upper().startswith(("HMGET", "EXPIRE", "ZRANGE"))]
    assert written == [], written

    # The devices page also lists the user's sessions (one more script); nothing else.
    for _ in range(4):  # both web processes load the listing script first
        assert http.get(f"{web}/sessions", timeout=10).status_code == 200
    with recording(stack.sessions.port) as redis:
        assert http.get(f"{web}/sessions", timeout=10).status_code == 200
    assert redis.sent_names() == ["EVALSHA", "EVALSHA"], redis.sent

    # A page that calls the API also reads the session's tokens, and only that: one pipelined round trip
    # that reads the pieces in the session's hash and the key beside it (where the previous layout kept them).
    assert http.get(f"{web}/dashboard", timeout=10).status_code == 200
    with recording(stack.sessions.port) as redis:
        assert http.get(f"{web}/dashboard", timeout=10).status_code == 200
    assert redis.sent_names() == ["EVALSHA", "HMGET", "GET"], redis.sent
