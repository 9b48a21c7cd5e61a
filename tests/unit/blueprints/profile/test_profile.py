"""/profile: per-field validation that changes nothing, PRG on success, persistence queued with a newer version."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import profile as accounts_profile
from accounts.persistence import persist_user
from connections import session_redis
from extensions import db
from models.user import User
from tests.integration.pages import form_values
from tests.support.session_records import seed_profile, shared_profile
from tests.unit.conftest import AppFactory
from tests.unit.helpers import (
    RecordingRedis,
    csrf_token,
    job_record,
    queued_records,
    run_queued_jobs,
    session_id,
    sign_in,
    signed_in_page_token,
    stored_session,
)
from tests.unit.mock_provider import ISSUER, MockProvider

FIELDS = ("display_name", "locale", "timezone", "website", "bio")


def valid_form(token: str, **changes: str) -> dict[str, str]:
    """A profile submission that passes every rule, with `changes`."""
    return {
        "csrf_token": token,
        "display_name": "Alice Liddell",
        "locale": "fr",
        "timezone": "Europe/Paris",
        "website": "https://alice.example.test/",
        "bio": "Down the rabbit hole.\nTwice.",
        **changes,
    }


def field_errors(html: str) -> dict[str, int]:
    """How many error messages each field shows."""
    return {name: len(re.findall(f'data-testid="error-{name}"', html)) for name in FIELDS}


def snapshot(app: Flask) -> dict[str, Any] | None:
    """The profile every session of alice shares (what sign-in would read for her)."""
    with app.app_context():
        return shared_profile(session_redis(), ISSUER, "alice")


def test_the_form_shows_the_current_profile(signed_in: FlaskClient) -> None:
    html = signed_in.get("/profile").get_data(as_text=True)
    assert 'name="display_name"' in html
    assert 'value="Alice"' in html
    assert re.search(r'<option selected value="en">|<option value="en" selected>', html)
    assert re.search(r'<option selected value="UTC">|<option value="UTC" selected>', html)


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    page = client.get("/profile")
    assert page.status_code == 302
    assert page.location == "/login?next=/profile"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", ""),
        ("display_name", "   "),
        ("display_name", "x" * 81),
        ("display_name", "Ali\x00ce"),
        ("display_name", "Ali\x1bce"),
        ("display_name", "Ali\u202ece"),  # right-to-left override
        ("display_name", "Ali\nce"),
        ("locale", "xx-YY"),
        ("locale", ""),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", ""),
        ("website", "javascript:alert(1)"),
        ("website", "JavaScript:alert(1)"),
        ("website", "ftp://files.example.test"),
        ("website", "https://"),
        ("website", "https://alice.example.test/" + "a" * 255),
        ("bio", "b" * 501),
        ("bio", "bell\x07"),
    ],
)
def test_invalid_input_is_refused_per_field_and_changes_nothing(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis, field: str, value: str
) -> None:
    sid = session_id(app, signed_in)
    record_before = stored_session(app, fake_redis, sid)
    jobs_before = queued_records(app)
    snapshot_before = snapshot(app)

    refused = signed_in.post("/profile", data=valid_form(signed_in_page_token(signed_in), **{field: value}))
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert field_errors(html) == {name: int(name == field) for name in FIELDS}
    assert "Nothing has been saved" in html

    assert stored_session(app, fake_redis, sid) == record_before
    assert queued_records(app) == jobs_before
    assert snapshot(app) == snapshot_before


def test_every_invalid_field_gets_its_own_message(app: Flask, signed_in: FlaskClient) -> None:
    bad = {"display_name": "", "locale": "xx", "timezone": "Nowhere/Land", "website": "javascript:x", "bio": "b" * 501}
    refused = signed_in.post("/profile", data=valid_form(signed_in_page_token(signed_in), **bad))
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert field_errors(html) == dict.fromkeys(FIELDS, 1)
    assert "Enter a display name." in html
    assert "Choose a language from the list." in html
    assert "Choose a time zone from the list" in html
    assert "http:// or https://" in html
    assert "at most 500 characters" in html


def test_a_valid_submit_saves_redirects_and_queues_persistence(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    version_before = stored_session(app, fake_redis, sid)["profile"]["version"]
    jobs_before = len(queued_records(app))

    saved = signed_in.post("/profile", data=valid_form(signed_in_page_token(signed_in), display_name="  Alice L.  "))
    assert saved.status_code == 302
    assert saved.location == "/profile"

    page = signed_in.get("/profile")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Your profile has been saved." in html
    assert 'value="Alice L."' in html
    assert re.search(r'<option selected value="Europe/Paris">|<option value="Europe/Paris" selected>', html)
    assert "Twice." in html
    assert "Your profile has been saved." not in signed_in.get("/profile").get_data(as_text=True)

    profile = stored_session(app, fake_redis, sid)["profile"]
    assert profile["display_name"] == "Alice L."
    assert profile["locale"] == "fr"
    assert profile["version"] > version_before

    records = queued_records(app)
    assert len(records) == jobs_before + 1
    job = records[-1]
    assert (job["issuer"], job["subject"]) == (ISSUER, "alice")
    assert job["display_name"] == "Alice L."
    assert job["timezone"] == "Europe/Paris"
    assert job["website"] == "https://alice.example.test/"
    assert job["bio"] == "Down the rabbit hole.\nTwice."
    assert job["profile_version"] == profile["version"]
    assert job["profile_version"] > records[0]["profile_version"]
    assert snapshot(app)["display_name"] == "Alice L."


def test_empty_optional_fields_are_stored_as_none(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    form = valid_form(signed_in_page_token(signed_in), website="  ", bio="")
    assert signed_in.post("/profile", data=form).status_code == 302
    profile = stored_session(app, fake_redis, session_id(app, signed_in))["profile"]
    assert profile["website"] is None
    assert profile["bio"] is None


def test_each_edit_gets_a_higher_version(app: Flask, signed_in: FlaskClient) -> None:
    for name in ("First", "Second", "Third"):
        assert (
            signed_in.post("/profile", data=valid_form(signed_in_page_token(signed_in), display_name=name)).status_code
            == 302
        )
    versions = [record["profile_version"] for record in queued_records(app)]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_an_edit_the_worker_saves_before_the_request_commits_it_is_reported_saved(
    app: Flask, signed_in: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast worker can store the edit's job, and publish it, before the request's own commit: the edit is
    kept, so the user hears "saved", never "nothing was saved" about an edit the row already holds."""
    queue_then_run = accounts_profile.enqueue_persistence

    def queued_and_done_at_once(record: dict[str, Any]) -> None:
        queue_then_run(record)
        assert run_queued_jobs(app) >= 1

    monkeypatch.setattr(accounts_profile, "enqueue_persistence", queued_and_done_at_once)
    page = signed_in.get("/profile").get_data(as_text=True)
    form = form_values(page) | {"display_name": "Saved By The Worker", "csrf_token": csrf_token(page)}

    response = signed_in.post("/profile", data=form)

    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Your profile has been saved." in signed_in.get("/profile").get_data(as_text=True)
    assert snapshot(app)["display_name"] == "Saved By The Worker"
    with app.app_context():
        row = db.session.execute(select(User).filter_by(subject="alice")).scalar_one()
        assert row.display_name == "Saved By The Worker"


def test_a_submit_without_the_csrf_token_changes_nothing(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis
) -> None:
    sid = session_id(app, signed_in)
    record_before = stored_session(app, fake_redis, sid)
    jobs_before = queued_records(app)
    form = valid_form("unused")
    del form["csrf_token"]
    assert signed_in.post("/profile", data=form).status_code == 400
    assert signed_in.post("/profile", data=valid_form("forged-token")).status_code == 400
    assert stored_session(app, fake_redis, sid) == record_before
    assert queued_records(app) == jobs_before


def test_an_edit_before_the_saved_profile_loads_changes_only_what_the_user_changed(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """The worker is away (Redis lost its data, the database is down): the edit is kept, and the row keeps
    every saved field the user did not touch."""
    app = make_app(PROFILE_LOAD_WAIT=0)
    saved = {"display_name": "Saved Alice", "locale": "fr", "timezone": "Europe/Paris", "website": "https://a.test/"}
    with app.app_context():
        persist_user(job_record(**saved, bio="Saved bio.", profile_version=5))
    fake_redis.flushall()  # the sessions Redis comes back empty
    client = app.test_client()
    sign_in(client, provider, worker=False)
    page = client.get("/profile").get_data(as_text=True)
    shown = {name: value for name, value in form_values(page).items() if name != "csrf_token"}
    assert shown["display_name"] == "Alice"  # the provider's defaults: the saved profile is not known yet
    assert "could not be loaded just now" in page  # and the page says so
    response = client.post("/profile", data={**shown, "display_name": "Renamed Alice", "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert queued_records(app)[-1]["only"] == ["display_name"]
    run_queued_jobs(app)
    with app.app_context():
        row = db.session.execute(select(User).filter_by(subject="alice")).scalar_one()
        assert (row.display_name, row.locale, row.website, row.bio) == (
            "Renamed Alice",
            "fr",
            "https://a.test/",
            "Saved bio.",
        )
    # Every session of the user now shows the whole saved profile, and it is confirmed for later edits.
    assert shared_profile(fake_redis, ISSUER, "alice")["website"] == "https://a.test/"
    assert stored_session(app, fake_redis, session_id(app, client))["profile"]["bio"] == "Saved bio."


def test_a_form_older_than_the_saved_profile_changes_nothing(
    make_app: AppFactory, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    """A form rendered from defaults, submitted after the saved profile loaded, would overwrite it: refused (409)."""
    app = make_app(PROFILE_LOAD_WAIT=0)  # no worker runs: the page renders defaults after its wait, so wait 0 s, not 3
    client = app.test_client()
    sign_in(client, provider, worker=False)
    page = client.get("/profile").get_data(as_text=True)
    token = csrf_token(page)
    shown = re.search(r'name="version"[^>]*value="(\d+)"', page) or re.search(r'value="(\d+)"[^>]*name="version"', page)
    assert shown is not None and shown.group(1) == "0"
    saved = {"display_name": "Saved Alice", "locale": "fr", "timezone": "Europe/Paris", "website": None, "bio": "kept"}
    seed_profile(fake_redis, ISSUER, "alice", {**saved, "version": 7})  # the worker loads what she saved before
    response = client.post("/profile", data=valid_form(token, display_name="Defaults Overwrite", version="0"))
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "Nothing was saved" in body and 'value="Saved Alice"' in body
    assert shared_profile(fake_redis, ISSUER, "alice") == {**saved, "version": 7}
    assert len(queued_records(app)) == 1


def test_the_form_carries_the_version_it_shows(signed_in: FlaskClient) -> None:
    """The hidden version lets a save notice that the profile moved on since the page was opened."""
    page = signed_in.get("/profile").get_data(as_text=True)
    assert 'name="version"' in page


@pytest.mark.parametrize("version", ["1; DROP", "²", "١٢٣", "9" * 5000, "9" * 20, "-1", "1.0", " 1"])
def test_a_forged_version_is_a_form_error(
    app: Flask, signed_in: FlaskClient, fake_redis: RecordingRedis, version: str
) -> None:
    """Only a plain bounded number is a version; anything else asks for a reload and changes nothing."""
    before = shared_profile(fake_redis, ISSUER, "alice")
    queued = len(queued_records(app))
    response = signed_in.post("/profile", data=valid_form(signed_in_page_token(signed_in), version=version))
    assert response.status_code == 400
    assert "This form is out of date" in response.get_data(as_text=True)
    assert shared_profile(fake_redis, ISSUER, "alice") == before
    assert len(queued_records(app)) == queued
