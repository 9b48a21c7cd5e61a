"""The audit trail on the real stack: events recorded by gunicorn, stored by the RQ worker, read by the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.pages import form_values, texts
from tests.support.browserless import TIMEOUT, csrf_token, sign_in, sign_out
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def laptop() -> Iterator[requests.Session]:
    """A second browser of the same person."""
    with requests.Session() as http:
        http.headers["User-Agent"] = FIREFOX
        yield http


def audit_list(stack: Stack, *args: str) -> list[dict[str, object]]:
    """`flask --app app audit list --json …`, run as an operator would, parsed line by line."""
    result = stack.flask("audit", "list", "--json", *args)
    return [json.loads(line) for line in result.stdout.splitlines()]


def callback_request_id(page: requests.Response) -> str:
    """The request id gunicorn answered the sign-in's callback with."""
    [callback] = [step for step in page.history if urlsplit(step.url).path == "/auth/callback"]
    return callback.headers["X-Request-ID"]


def test_every_security_event_reaches_the_audit_trail_and_the_devices_page(
    stack: Stack, browser: requests.Session, laptop: requests.Session, subject: str
) -> None:
    signed_in = sign_in(browser, stack.web_url, subject, next_path="/profile")
    sign_in(laptop, stack.web_url, subject)

    fields = form_values(signed_in.text) | {"display_name": "Not In The Log"}
    saved = browser.post(f"{stack.web_url}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert saved.status_code == 302, saved.text

    devices = browser.get(f"{stack.web_url}/sessions", timeout=TIMEOUT)
    [laptop_row] = [row for row in texts(devices.text, "session-device") if "Firefox" in row]
    assert laptop_row
    revoke = browser.post(
        f"{stack.web_url}/sessions/revoke-others",
        data={"csrf_token": csrf_token(devices.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert revoke.status_code == 302

    def all_recorded() -> bool:
        return len(audit_list(stack, "--subject", subject)) == 4

    wait_until(all_recorded, timeout=30, what="four audit events stored by the worker")
    page = browser.get(f"{stack.web_url}/sessions", timeout=TIMEOUT)
    assert texts(page.text, "activity-what") == [
        "Signed out all other devices",
        "Changed the profile",
        "Signed in",
        "Signed in",
    ]

    assert sign_out(browser, stack.web_url).status_code in (302, 303)
    wait_until(lambda: len(audit_list(stack, "--subject", subject)) == 5, timeout=30, what="the sign-out event")

    events = audit_list(stack, "--subject", subject)
    assert [(event["kind"], event["outcome"]) for event in events] == [
        ("sign_in", "success"),
        ("sign_in", "success"),
        ("profile_changed", "saved"),
        ("session_revoked", "user_others"),
        ("sign_out", "user"),
    ]
    assert events[0]["request_id"] == callback_request_id(signed_in)
    assert {event["issuer"] for event in events} == {stack.provider_url}
    assert events[1]["user_agent"] == FIREFOX
    assert {event["address"] for event in events} == {"127.0.0.1"}
    assert events[2]["detail"] == "display_name"
    assert events[3]["detail"] == "1 other sessions ended"
    assert not any("Not In The Log" in json.dumps(event) for event in events)
    # Each event was stored once, whatever the worker's batching and retries did.
    assert len({event["event_id"] for event in events}) == 5
    # Another user's trail does not include them.
    assert all(event["subject"] == subject for event in events)


def test_identical_requests_of_a_minute_are_one_audit_row_with_their_count(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    """Ten revoke-others in a row (under the per-user limit) are one row counting ten, stored by the real
    worker in whatever batches it makes; two rows, together ten, if the requests crossed a minute."""
    sign_in(browser, stack.web_url, subject)
    token = csrf_token(browser.get(f"{stack.web_url}/sessions", timeout=TIMEOUT).text)
    for _ in range(10):
        revoke = browser.post(
            f"{stack.web_url}/sessions/revoke-others",
            data={"csrf_token": token},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert revoke.status_code == 302

    def revokes() -> list[dict[str, object]]:
        return [event for event in audit_list(stack, "--subject", subject) if event["kind"] == "session_revoked"]

    def counted(rows: list[dict[str, object]]) -> int:
        return sum(int(str(row["repeats"])) for row in rows)

    wait_until(lambda: counted(revokes()) >= 10, timeout=30, what="ten revokes counted by the worker")
    stack.wait_for_jobs()
    rows = revokes()
    assert counted(rows) == 10  # each request counted once, whatever the batching did
    assert 1 <= len(rows) <= 2
    assert {(row["outcome"], row["detail"]) for row in rows} == {("user_others", "0 other sessions ended")}
    for row in rows:
        first, last = datetime.fromisoformat(str(row["time"])), datetime.fromisoformat(str(row["last_time"]))
        assert first <= last < first.replace(second=0, microsecond=0) + timedelta(minutes=1)

    page = browser.get(f"{stack.web_url}/sessions", timeout=TIMEOUT)
    described = "Signed out all other devices"
    expected = [f"{described} ({row['repeats']} times)" if row["repeats"] != 1 else described for row in rows]
    assert texts(page.text, "activity-what") == [*reversed(expected), "Signed in"]
