"""The user's recent activity on /sessions: their own events only, and the page works without the database."""

from __future__ import annotations

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
