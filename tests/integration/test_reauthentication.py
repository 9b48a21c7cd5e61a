"""Re-authentication on the real stack: gunicorn, Redis, the development provider and a worker.

A page behind `recent_sign_in_required(max_age=60)` (tests/support/reauth_app.py) sends a user whose
authentication is an hour old to the provider with max_age, and lets them in once the provider has
authenticated them again, in the same session. Another user's authentication is refused. (A provider
that ignores max_age is the unit suite's: this provider always authenticates afresh.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from devstack.processes import wait_for_port
from tests.support.browserless import sign_in
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.stack import ROOT, Stack, start_stack, wait_for_app

pytestmark = pytest.mark.integration

TIMEOUT = 10
APP = "tests.support.reauth_app"
COOKIE = "gatehouse_session"


@pytest.fixture(scope="module")
def reauth_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """The real stack (Redis, provider, worker) and a gunicorn serving Gatehouse plus the sensitive page."""
    running = start_stack(tmp_path_factory.mktemp("reauth"), web=0)
    try:
        yield running, start_sensitive_web(running)
    finally:
        running.stop()


def start_sensitive_web(stack: Stack) -> str:
    """gunicorn with the repository's gunicorn.conf.py serving tests/support/reauth_app.py; its base URL."""
    port = free_port()
    env = {**stack.env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), f"{APP}:create_app()"]
    with open(Path(stack.env["GATEHOUSE_TEST_LOGS"]) / "sensitive-web.log", "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack.processes["sensitive-web"] = process  # stopped with the stack
    url = f"http://127.0.0.1:{port}"
    wait_for_port(port, process=process, timeout=30)
    wait_for_app(url, process)
    return url


def make_authentication_old(stack: Stack, browser: requests.Session) -> None:
    """As if the user had signed in an hour ago: set their session's auth time in Redis."""
    user, member = browser.cookies[COOKIE].split(".")
    with stack.redis() as client:
        assert client.hset(f"gh:{{{user}}}:s:{member}", "at", int(time.time()) - 3600) == 0


def authenticate_at_provider(browser: requests.Session, start: requests.Response, subject: str) -> requests.Response:
    """Follow the app's redirect to the provider, sign `subject` in there, and return the callback's answer."""
    assert start.status_code == 303, start.text
    authorize_url = start.headers["Location"]
    assert parse_qs(urlsplit(authorize_url).query)["max_age"] == ["60"]
    consent = browser.post(authorize_url, data={"sub": subject}, allow_redirects=False, timeout=TIMEOUT)
    assert consent.status_code == 302, consent.text
    return browser.get(consent.headers["Location"], allow_redirects=False, timeout=TIMEOUT)


def reauth_events(stack: Stack, subject: str) -> list[dict[str, object]] | None:
    """The subject's `reauthenticated` events, as `flask --app app audit list --json` prints them (None until one)."""
    printed = stack.flask("audit", "list", "--json", "--subject", subject).stdout
    events = [json.loads(line) for line in printed.splitlines() if line.strip()]
    found = [event for event in events if event["kind"] == "reauthenticated"]
    return found or None


def test_an_old_authentication_is_renewed_at_the_provider_in_the_same_session(
    reauth_stack: tuple[Stack, str], browser: requests.Session, subject: str
) -> None:
    stack, web = reauth_stack
    sign_in(browser, web, subject)
    assert browser.get(f"{web}/sensitive", allow_redirects=False, timeout=TIMEOUT).status_code == 200
    make_authentication_old(stack, browser)
    session_before = browser.cookies[COOKIE]

    start = browser.get(f"{web}/sensitive?tab=devices", allow_redirects=False, timeout=TIMEOUT)
    back = authenticate_at_provider(browser, start, subject)
    assert back.status_code == 303
    assert back.headers["Location"] == "/sensitive?tab=devices"
    page = browser.get(urljoin(web, back.headers["Location"]), allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    authenticated_at = int(page.text.rsplit(" ", 1)[1])
    assert time.time() - authenticated_at < 60
    assert browser.cookies[COOKIE] == session_before, "the same session, never signed out to re-authenticate"
    [event] = wait_until(lambda: reauth_events(stack, subject), timeout=30, what="the re-authentication's audit event")
    assert (event["outcome"], event["request_id"]) == ("success", back.headers["X-Request-ID"])


def test_another_user_at_the_provider_is_refused(
    reauth_stack: tuple[Stack, str], browser: requests.Session, subject: str
) -> None:
    stack, web = reauth_stack
    sign_in(browser, web, subject)
    make_authentication_old(stack, browser)

    start = browser.get(f"{web}/sensitive", allow_redirects=False, timeout=TIMEOUT)
    back = authenticate_at_provider(browser, start, f"{subject}-someone-else")
    assert back.status_code == 303
    assert back.headers["Location"] == "/auth/failed?reason=reauth_other_user"
    refused = browser.get(urljoin(web, back.headers["Location"]), allow_redirects=False, timeout=TIMEOUT)
    assert refused.status_code == 400
    assert "signed in at the provider as someone else" in refused.text
    # Still signed in as before, and still asked to re-authenticate.
    assert browser.get(f"{web}/sensitive", allow_redirects=False, timeout=TIMEOUT).status_code == 303
    profile = browser.get(f"{web}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert profile.status_code == 200 and subject in profile.text
    # In the signed-in user's trail, with the refusal's kind; nothing in the other user's.
    [event] = wait_until(lambda: reauth_events(stack, subject), timeout=30, what="the refusal's audit event")
    assert event["outcome"] == "reauth_other_user"
    assert reauth_events(stack, f"{subject}-someone-else") is None
