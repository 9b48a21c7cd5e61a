"""The sessions Redis loses its data: a returning user's saved profile comes back before they can change it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.pages import form_values
from tests.reliability.helpers import edit_profile, rows_by_subject, start_reliability_stack
from tests.support.browserless import csrf_token, sign_in
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

SAVED = {
    "display_name": "Ada Saved",
    "locale": "fr",
    "timezone": "Europe/Paris",
    "website": "https://ada.example.test/notes",
    "bio": "Saved before the outage.",
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Sessions Redis, queue Redis (apart, so only sessions are lost), the provider, a worker and a web process."""
    running = start_reliability_stack(tmp_path, separate_queue=True, provider=True, web=1)
    try:
        yield running
    finally:
        running.stop()


def saved_row(stack: Stack, subject: str) -> dict:
    """The user's one row."""
    (row,) = rows_by_subject(stack)[subject]
    return row


def test_a_returning_user_sees_their_saved_profile_and_an_edit_keeps_the_rest(stack: Stack) -> None:
    web = stack.web_url
    http = requests.Session()
    sign_in(http, web, "returning", next_path="/profile")
    assert edit_profile(http, web, **SAVED).status_code == 302
    wait_until(lambda: saved_row(stack, "returning")["display_name"] == "Ada Saved", timeout=30, what="the edit")

    # The sessions Redis restarts empty (no persistence): every session and shared profile is gone.
    with stack.sessions.client() as client:
        client.flushall()
    again = requests.Session()
    landed = sign_in(again, web, "returning", next_path="/profile")
    assert landed.status_code == 200

    # The saved profile shows at once, on the page the sign-in lands on (it waits for the worker to load
    # the row from the database); before, this first view showed the provider's defaults.
    values = form_values(landed.text)
    assert {name: values[name] for name in SAVED} == SAVED
    assert 'data-testid="profile-loading"' not in landed.text

    # An edit of one field from the current form keeps every other saved field.
    page = again.get(f"{web}/profile", timeout=10).text
    fields = {**form_values(page), "csrf_token": csrf_token(page), "display_name": "Ada Renamed"}
    assert again.post(f"{web}/profile", data=fields, allow_redirects=False, timeout=10).status_code == 302
    row = wait_until(
        lambda: (r := saved_row(stack, "returning"))["display_name"] == "Ada Renamed" and r,
        timeout=30,
        what="the rename to persist",
    )
    assert {name: row[name] for name in SAVED if name != "display_name"} == {
        name: value for name, value in SAVED.items() if name != "display_name"
    }


def test_a_form_from_before_the_loss_cannot_overwrite_the_saved_profile(stack: Stack) -> None:
    """Whatever the timing, a submission built from the provider's defaults (version 0) never reaches the row."""
    web = stack.web_url
    http = requests.Session()
    sign_in(http, web, "stale-form", next_path="/profile")
    assert edit_profile(http, web, **SAVED).status_code == 302
    wait_until(lambda: saved_row(stack, "stale-form")["bio"] == SAVED["bio"], timeout=30, what="the edit")
    with stack.sessions.client() as client:
        client.flushall()
    again = requests.Session()
    page = sign_in(again, web, "stale-form", next_path="/profile").text
    defaults = {**form_values(page), "csrf_token": csrf_token(page), "version": "0", "bio": ""}
    answer = again.post(f"{web}/profile", data=defaults, allow_redirects=False, timeout=10)
    assert answer.status_code == 409, answer.text[:300]
    assert saved_row(stack, "stale-form")["bio"] == SAVED["bio"]
    assert "Nothing was saved" in answer.text
