"""Delete my account on the real stack (gunicorn, Redis, the RQ worker, SQLite and PostgreSQL): every
session ends at once, the row goes through the queue, a persistence job queued for the user afterwards
brings nothing back, the deletion is in the audit trail, and a new sign-in starts a new account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from accounts.persistence import persist_user
from extensions import db
from jobs.queues import put_on_queue
from models.user import User
from sessions import keys
from tests.integration.pages import form_values, is_signed_out
from tests.integration.persisted import queues_idle, user_rows, wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, sign_in
from tests.support.polling import wait_until
from tests.support.stack import Stack
from users.schema import PROFILE_FIELDS

pytestmark = pytest.mark.integration


@pytest.fixture
def phone() -> Iterator[requests.Session]:
    """Another browser of the same person."""
    with requests.Session() as http:
        yield http


def press_delete(http: requests.Session, base_url: str) -> requests.Response:
    """Open the confirmation page and press "Delete my account" (the redirect is not followed)."""
    page = http.get(f"{base_url}/account/delete", timeout=TIMEOUT)
    assert page.status_code == 200, page.status_code
    return http.post(
        f"{base_url}/account/delete", data={"csrf_token": csrf_token(page.text)}, allow_redirects=False, timeout=TIMEOUT
    )


def stale_record(stack: Stack, subject: str) -> dict[str, Any]:
    """What a persistence job still queued (or retried) for the user carries: their data at its old versions."""
    with stack.context():
        try:
            row = db.session.execute(select(User).filter_by(issuer=stack.provider_url, subject=subject)).scalar_one()
            fields = ("issuer", "subject", "email", "name", *PROFILE_FIELDS, "identity_version", "profile_version")
            return {field: getattr(row, field) for field in fields}
        finally:
            db.session.remove()


def test_deleting_an_account_ends_it_everywhere_and_for_good(
    stack: Stack, browser: requests.Session, phone: requests.Session, subject: str
) -> None:
    signed_in = sign_in(browser, stack.web_url, subject, next_path="/profile")
    fields = form_values(signed_in.text) | {"display_name": "Soon Gone"}
    saved = browser.post(f"{stack.web_url}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert saved.status_code == 302
    sign_in(phone, stack.web_url, subject)
    wait_for_row(stack, subject, display_name="Soon Gone")
    stale = stale_record(stack, subject)

    deleted = press_delete(browser, stack.web_url)

    assert deleted.status_code == 303
    assert deleted.headers["Location"] == "/account/deleted"
    assert is_signed_out(browser, stack.web_url)
    assert is_signed_out(phone, stack.web_url)  # at once, without waiting for the worker
    with stack.redis() as client:
        state = client.hgetall(keys.user_key(keys.user_tag(stack.provider_url, subject)))
    assert list(state) == [b"gone"]
    wait_until(lambda: queues_idle(stack) and not user_rows(stack, subject), timeout=30, what="the row deleted")

    with stack.context():
        job = put_on_queue(persist_user, stale)
    wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=30, what="the stale job to run")
    assert user_rows(stack, subject) == []
    with stack.redis() as client:
        assert list(client.hgetall(keys.user_key(keys.user_tag(stack.provider_url, subject)))) == [b"gone"]

    def kinds() -> list[str]:
        listed = stack.flask("audit", "list", "--json", "--subject", subject).stdout.splitlines()
        return [json.loads(line)["kind"] for line in listed]

    wait_until(lambda: "account_deleted" in kinds(), timeout=30, what="the deletion in the audit trail")
    assert kinds()[-1] == "account_deleted"

    sign_in(browser, stack.web_url, subject)
    again = wait_for_row(stack, subject)
    assert again["display_name"] != "Soon Gone"

    # The new account's devices page shows only its own sign-in; the audit trail keeps the old account's events.
    wait_until(lambda: kinds().count("sign_in") == 3, timeout=30, what="the new sign-in in the audit trail")
    assert {"profile_changed", "account_deleted"} <= set(kinds())
    devices = browser.get(f"{stack.web_url}/sessions", timeout=TIMEOUT)
    assert re.findall(r'data-testid="activity-what">([^<]*)<', devices.text) == ["Signed in"]
