"""Profile edits over HTTP with CSRF: refused input changes nothing, accepted input shows at once and persists."""

from __future__ import annotations

import pytest
import requests

from tests.integration.pages import form_values, texts
from tests.integration.persisted import job_ids, user_rows, wait_for_row
from tests.integration.provider import set_user_claims
from tests.support.browserless import TIMEOUT, csrf_token, session_id, sign_in, sign_out
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PROFILE_FIELDS = ("display_name", "locale", "timezone", "website", "bio")

NEW_PROFILE = {
    "display_name": "Grace Hopper",
    "locale": "fr",
    "timezone": "Europe/Paris",
    "website": "https://example.org/grace",
    "bio": "Rear admiral.\nCompiler pioneer.",
}


def shown_profile(page_html: str) -> dict[str, str]:
    """The profile values the form on a page shows."""
    values = form_values(page_html)
    return {name: values[name] for name in PROFILE_FIELDS}


def submit_profile(http: requests.Session, base_url: str, fields: dict[str, str]) -> requests.Response:
    """Fill in the profile form as shown and press Save (the redirect is not followed)."""
    form = http.get(f"{base_url}/profile", timeout=TIMEOUT)
    assert form.status_code == 200
    data = {"csrf_token": csrf_token(form.text), **fields}
    return http.post(f"{base_url}/profile", data=data, allow_redirects=False, timeout=TIMEOUT)


def test_invalid_edit_shows_a_message_per_field_and_changes_nothing(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    before = shown_profile(page.text)
    row_before = wait_for_row(stack, subject, display_name=subject)
    record_before = stack.session_record(session_id(browser) or "")
    jobs_before = job_ids(stack)

    response = submit_profile(
        browser,
        stack.web_url,
        {
            "display_name": "   ",
            "locale": "xx-NOPE",
            "timezone": "Mars/Olympus_Mons",
            "website": "javascript:alert(1)",
            "bio": "b" * 501,
        },
    )

    assert response.status_code == 400
    assert texts(response.text, "error-display_name") == ["Enter a display name."]
    assert texts(response.text, "error-locale") == ["Choose a language from the list."]
    assert texts(response.text, "error-timezone") == ["Choose a time zone from the list, such as Europe/Paris."]
    assert texts(response.text, "error-website") == ["Enter a web address starting with http:// or https://."]
    assert texts(response.text, "error-bio") == ["Use at most 500 characters."]
    assert "Nothing has been saved." in response.text
    # Nothing changed: the next page, the stored session, the queue and the database.
    next_page = browser.get(f"{stack.web_url}/profile", timeout=TIMEOUT)
    assert shown_profile(next_page.text) == before
    assert texts(next_page.text, "signed-in-as") == [subject]
    assert stack.session_record(session_id(browser) or "") == record_before
    assert job_ids(stack) == jobs_before
    assert user_rows(stack, subject) == [row_before]


def test_valid_edit_shows_at_once_and_the_worker_persists_it(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    set_user_claims(stack.provider_url, subject, {"name": "Provider Default", "email": f"{subject}@example.org"})
    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    assert shown_profile(page.text)["display_name"] == "Provider Default"

    response = submit_profile(browser, stack.web_url, NEW_PROFILE)

    assert response.status_code == 302
    assert response.headers["Location"] == "/profile"
    next_page = browser.get(f"{stack.web_url}/profile", timeout=TIMEOUT)
    assert shown_profile(next_page.text) == NEW_PROFILE
    assert texts(next_page.text, "signed-in-as") == ["Grace Hopper"]
    assert "Your profile has been saved." in next_page.text
    row = wait_for_row(stack, subject, display_name="Grace Hopper")
    assert {name: row[name] for name in PROFILE_FIELDS} == NEW_PROFILE
    assert row["email"] == f"{subject}@example.org"
    assert len(user_rows(stack, subject)) == 1


def test_saved_profile_comes_back_after_signing_in_again(stack: Stack, browser: requests.Session, subject: str) -> None:
    set_user_claims(stack.provider_url, subject, {"name": "Provider Default", "email": f"{subject}@example.org"})
    sign_in(browser, stack.web_url, subject, next_path="/profile")
    assert submit_profile(browser, stack.web_url, NEW_PROFILE).status_code == 302
    wait_for_row(stack, subject, display_name="Grace Hopper")
    sign_out(browser, stack.web_url)
    # A new email at the provider shows when the sign-in job has run.
    set_user_claims(stack.provider_url, subject, {"name": "Provider Default", "email": f"new-{subject}@example.org"})

    page = sign_in(browser, stack.web_url, subject, next_path="/profile")

    assert shown_profile(page.text) == NEW_PROFILE
    assert texts(page.text, "signed-in-as") == ["Grace Hopper"]
    # The sign-in updates the identity claims but never the saved profile, and adds no row.
    row = wait_for_row(stack, subject, email=f"new-{subject}@example.org")
    assert {name: row[name] for name in PROFILE_FIELDS} == NEW_PROFILE
    assert len(user_rows(stack, subject)) == 1
