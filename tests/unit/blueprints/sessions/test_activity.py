"""The user's recent activity on /sessions: their own events only, and the page works without the database."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from audit import activity
from tests.unit.helpers import run_queued_jobs, sign_in, signed_in_page_token
from tests.unit.mock_provider import MockProvider


def test_the_devices_page_lists_my_own_recent_activity_only(app: Flask, provider: MockProvider) -> None:
    alice, bob = app.test_client(), app.test_client()
    sign_in(alice, provider, "alice")
    sign_in(bob, provider, "bob")
    bob.post("/logout", data={"csrf_token": signed_in_page_token(bob)})
    run_queued_jobs(app)

    page = alice.get("/sessions").get_data(as_text=True)
    assert page.count('data-testid="activity-row"') == 1
    assert "Signed in" in page
    assert "Signed out" not in page  # bob's sign-out is not alice's business


def test_identical_events_of_a_minute_show_once_with_their_count(app: Flask, provider: MockProvider) -> None:
    client = app.test_client()
    sign_in(client, provider, "alice")
    token = signed_in_page_token(client, "/sessions")
    for _ in range(3):
        assert client.post("/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    run_queued_jobs(app)

    page = client.get("/sessions").get_data(as_text=True)
    *revokes, signed_in = re.findall(r'data-testid="activity-what">([^<]*)<', page)
    assert signed_in == "Signed in"
    # One row, or two when the requests crossed a minute.
    counts = [re.fullmatch(r"Signed out all other devices(?: \((\d+) times\))?", what) for what in revokes]
    assert all(counts) and len(counts) <= 2, revokes
    assert sum(int(count.group(1) or 1) for count in counts if count) == 3


def test_the_devices_page_still_works_when_the_activity_cannot_be_read(
    app: Flask, provider: MockProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    sign_in(client, provider, "alice")

    def database_down(**_: object) -> None:
        raise OperationalError("SELECT", {}, Exception("database is away"))

    monkeypatch.setattr(activity, "events", database_down)
    page = client.get("/sessions")
    assert page.status_code == 200
    assert 'data-testid="activity-unavailable"' in page.get_data(as_text=True)
    assert 'data-testid="session-row"' in page.get_data(as_text=True)
