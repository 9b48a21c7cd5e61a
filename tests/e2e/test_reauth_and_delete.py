"""Re-authentication and "Delete my account" in the browser, against the certified provider.

The provider advertises the claims parameter, so every sign-in asks for `auth_time` (OIDC Core 5.5) and a
fresh one is recorded with its auth time: pressing "Delete my account" within 5 minutes deletes at once,
with no trip to the provider. A user whose sign-in is an hour old (at Gatehouse and at the provider)
presses "Delete my account": the provider, asked for max_age, shows its login form again; back at the
confirmation page, in the same session, a second press deletes the account. Deleting on one device signs
the other out; the row goes, the audit trail ends with account_deleted, and a new sign-in starts a new
account with the provider's profile. A delete form posted without its CSRF token deletes nothing. Every
journey runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, Request, expect

from blueprints.account.routes import DELETE_MAX_AGE
from tests.e2e.http_sign_in import PASSWORD
from tests.e2e.pages import Screenshot, provider_login_form, provider_name, sign_in, signed_in_as
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"
# How old the user's sign-in is made: well past DELETE_MAX_AGE.
AN_HOUR = 3600
PROFILE_FIELDS = ("display_name", "locale", "timezone", "website", "bio")
# What Gatehouse sends a provider whose discovery says claims_parameter_supported: true.
AUTH_TIME_CLAIMS = '{"id_token":{"auth_time":{"essential":true}}}'


def gatehouse_cookie(page: Page) -> str:
    """The device's Gatehouse session cookie value (`<user tag>.<member>`)."""
    values = [c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(values) == 1, f"expected one Gatehouse session cookie, got {values}"
    return values[0]


def auth_time_key(page: Page) -> str:
    """The Redis hash of the device's session, whose `at` field is its sign-in's auth time."""
    user, member = gatehouse_cookie(page).split(".")
    return f"gh:{{{user}}}:s:{member}"


def session_auth_time(deployment: Stack, page: Page) -> int | None:
    """The auth time stored with the device's session (None when it has none)."""
    with deployment.redis() as client:
        value = client.hget(auth_time_key(page), "at")
    return int(value) if value else None


def make_sign_in_an_hour_old(deployment: Stack, page: Page, login: str) -> None:
    """As if the user had signed in an hour ago: at Gatehouse (the session's auth time) and at the provider."""
    with deployment.redis() as client:
        assert client.hset(auth_time_key(page), "at", int(time.time()) - AN_HOUR) == 0, "no auth time to age"
    provider = deployment.provider
    assert provider is not None
    aged = requests.post(
        f"{provider.url}/__test/accounts/{login}/age-sessions",
        json={"seconds": AN_HOUR},
        headers={"Authorization": f"Bearer {provider.admin_secret}"},
        timeout=10,
    )
    aged.raise_for_status()
    assert aged.json() and all(time.time() - row["login_ts"] > AN_HOUR - 60 for row in aged.json())


def device_list(page: Page, app_url: str) -> list[tuple[str, str, str | None, bool]]:
    """/sessions as the user sees it: (device, address, signed-in time, this device?) per row."""
    page.goto(f"{app_url}/sessions")
    rows = page.get_by_test_id("session-row")
    expect(rows.first).to_be_visible()
    return [
        (
            row.get_by_test_id("session-device").inner_text(),
            row.get_by_test_id("session-address").inner_text(),
            row.locator("time").first.get_attribute("datetime"),
            row.get_attribute("data-current") == "true",
        )
        for row in rows.all()
    ]


def profile_values(page: Page, app_url: str) -> dict[str, str]:
    """The values the profile form shows."""
    page.goto(f"{app_url}/profile")
    expect(page.locator("#display_name")).to_be_visible()
    return {field: page.locator(f"#{field}").input_value() for field in PROFILE_FIELDS}


def navigations(page: Page) -> list[str]:
    """Start recording the URLs the tab navigates to (redirects included)."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if request.is_navigation_request():
            seen.append(request.url)

    page.on("request", record)
    return seen


def audit_kinds(deployment: Stack, subject: str) -> list[str]:
    """The kinds of the subject's audit events, oldest first, as `flask --app app audit list --json` prints."""
    printed = deployment.flask("audit", "list", "--json", "--subject", subject).stdout
    return [json.loads(line)["kind"] for line in printed.splitlines() if line.strip()]


def row_named(deployment: Stack, subject: str, display_name: str) -> dict[str, Any] | None:
    """The subject's persisted row once it shows `display_name`, else None."""
    row = deployment.user(subject)
    return row if row is not None and row["display_name"] == display_name else None


def ends_with_deletion(kinds: list[str]) -> list[str] | None:
    """The audit kinds if the last one is account_deleted, else None."""
    return kinds if kinds and kinds[-1] == "account_deleted" else None


def authorize_requests(seen: list[str], provider_url: str) -> list[str]:
    """The navigations to the provider's authorization endpoint among `seen`."""
    return [url for url in seen if url.startswith(f"{provider_url}/auth?")]


def press_delete(page: Page, app_url: str) -> None:
    """Open the confirmation page and press "Delete my account"; return once the browser has left it (the
    answer may bring it back to the same URL, so the URL alone cannot tell)."""
    page.goto(f"{app_url}/account/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your account")
    with page.expect_navigation():
        page.get_by_role("button", name="Delete my account").click()


def delete_at_once(page: Page, deployment: Stack, login: str) -> None:
    """Press "Delete my account" after a recent authentication: this one press deletes the account, with no
    trip to the provider (no request to it at all, so no login form either), and the row goes."""
    provider = deployment.provider
    assert provider is not None
    seen = navigations(page)
    press_delete(page, deployment.web_url)
    shows_deleted(page, deployment.web_url)
    assert not [url for url in seen if url.startswith(f"{provider.url}/")], f"went to the provider: {seen}"
    wait_until(lambda: deployment.user(login) is None, timeout=30, what="the user's row deleted")


def shows_deleted(page: Page, app_url: str) -> None:
    """The /account/deleted page, signed out."""
    expect(page).to_have_url(f"{app_url}/account/deleted")
    expect(page.get_by_test_id("account-deleted")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def shows_signed_out_home(page: Page, app_url: str) -> None:
    """Open the home page: Gatehouse no longer knows the device."""
    page.goto(f"{app_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Gatehouse")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def test_an_old_sign_in_is_renewed_at_the_provider_before_the_account_is_deleted(
    context: BrowserContext, deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """The provider shows its login form again (max_age); back at the confirmation page a second press deletes."""
    app, provider = deployment.web_url, deployment.provider
    assert provider is not None
    page = context.new_page()
    sign_in(page, app, provider.url, user_login, "/profile")
    wait_until(lambda: deployment.user(user_login) is not None, timeout=30, what="the user's row")
    cookie = gatehouse_cookie(page)
    signed_in_at = session_auth_time(deployment, page)
    assert signed_in_at is not None and time.time() - signed_in_at < 60, "the sign-in recorded no auth time"
    devices = device_list(page, app)
    assert len(devices) == 1 and devices[0][3]
    make_sign_in_an_hour_old(deployment, page, user_login)

    seen = navigations(page)
    press_delete(page, app)

    provider_login_form(page, provider.url)
    authorize = authorize_requests(seen, provider.url)
    assert len(authorize) == 1, seen
    asked = parse_qs(urlsplit(authorize[0]).query)
    assert asked["max_age"] == [str(DELETE_MAX_AGE)]
    assert asked["claims"] == [AUTH_TIME_CLAIMS]
    assert "prompt" not in asked, "the login form must come from max_age alone"
    assert deployment.user(user_login) is not None, "deleted before the user signed in again"
    screenshot(page, "reauth-sign-in")

    page.fill("input[name=login]", user_login)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign-in").click()

    # Back at the confirmation page, nothing deleted, in the same session on the same devices.
    expect(page).to_have_url(f"{app}/account/delete")
    expect(page.get_by_role("button", name="Delete my account")).to_be_visible()
    assert signed_in_as(page) == provider_name(user_login)
    assert gatehouse_cookie(page) == cookie, "signed out and in again instead of re-authenticated"
    auth_time = session_auth_time(deployment, page)
    assert auth_time is not None and time.time() - auth_time < 60, "the session's auth time was not renewed"
    assert deployment.user(user_login) is not None
    screenshot(page, "reauth-confirm-again")
    assert device_list(page, app) == devices
    assert authorize_requests(seen, provider.url) == authorize, "sent round again"

    delete_at_once(page, deployment, user_login)

    assert authorize_requests(seen, provider.url) == authorize, "asked again"
    shows_signed_out_home(page, app)


def test_deleting_on_one_device_signs_the_other_out_and_a_new_sign_in_is_a_new_account(
    open_context: Callable[[], BrowserContext], deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Laptop deletes on its first press (its fresh sign-in asked for and recorded an auth time); the phone's next
    page is signed out; the row goes; signing in again starts afresh."""
    app, provider = deployment.web_url, deployment.provider
    assert provider is not None
    laptop, phone = open_context().new_page(), open_context().new_page()
    sign_in_trip = navigations(laptop)
    sign_in(laptop, app, provider.url, user_login, "/profile")
    (authorize,) = authorize_requests(sign_in_trip, provider.url)
    assert parse_qs(urlsplit(authorize).query)["claims"] == [AUTH_TIME_CLAIMS]
    assert "max_age" not in parse_qs(urlsplit(authorize).query)
    signed_in_at = session_auth_time(deployment, laptop)
    assert signed_in_at is not None and time.time() - signed_in_at < 60, "the sign-in recorded no auth time"
    defaults = profile_values(laptop, app)
    assert defaults["display_name"] == provider_name(user_login)
    laptop.fill("#display_name", "Edited Before Deletion")
    laptop.select_option("#timezone", "Asia/Tokyo")
    laptop.fill("#website", "https://deleted.example.org/")
    laptop.get_by_role("button", name="Save profile").click()
    expect(laptop.get_by_role("status")).to_have_text("Your profile has been saved.")
    sign_in(phone, app, provider.url, user_login, "/dashboard")
    assert signed_in_as(phone) == "Edited Before Deletion"
    first_row = wait_until(
        lambda: row_named(deployment, user_login, "Edited Before Deletion"),
        timeout=30,
        what="the edited profile persisted",
    )
    assert len(device_list(laptop, app)) == 2

    delete_at_once(laptop, deployment, user_login)
    screenshot(laptop, "account-deleted")

    shows_signed_out_home(phone, app)
    # A protected page sends the phone to sign in (not followed: the provider's live session would sign
    # it straight back in, as a new account).
    protected = phone.request.get(f"{app}/profile", max_redirects=0)
    assert protected.status == 302 and protected.headers["location"] == "/login?next=/profile", protected.headers
    kinds = wait_until(
        lambda: ends_with_deletion(audit_kinds(deployment, user_login)),
        timeout=30,
        what="account_deleted at the end of the audit trail",
    )
    assert kinds is not None and kinds.count("account_deleted") == 1
    assert "profile_changed" in kinds

    # Signing in again: a new account with the provider's profile, not the deleted one.
    fresh = open_context().new_page()
    sign_in(fresh, app, provider.url, user_login, "/profile")
    assert signed_in_as(fresh) == provider_name(user_login)
    assert profile_values(fresh, app) == defaults
    second_row = wait_until(
        lambda: row_named(deployment, user_login, defaults["display_name"]), timeout=30, what="the new account's row"
    )
    assert first_row is not None and second_row is not None
    assert second_row["timezone"] == defaults["timezone"] != "Asia/Tokyo"
    assert second_row["created_at"] > first_row["created_at"]
    assert len(device_list(fresh, app)) == 1, "a deleted session came back"


def test_the_delete_form_without_its_csrf_token_is_refused_and_deletes_nothing(
    context: BrowserContext, deployment: Stack, user_login: str
) -> None:
    """Posted without (or with a forged) CSRF token: 400, and the user is still signed in with their account."""
    app, provider = deployment.web_url, deployment.provider
    assert provider is not None
    page = context.new_page()
    sign_in(page, app, provider.url, user_login, "/profile")
    wait_until(lambda: deployment.user(user_login) is not None, timeout=30, what="the user's row")
    cookie = gatehouse_cookie(page)

    # The page's own form, its hidden field removed: the browser posts it with the session cookie.
    page.goto(f"{app}/account/delete")
    page.get_by_role("main").locator("input[name=csrf_token]").evaluate("field => field.remove()")
    with page.expect_response(f"{app}/account/delete") as answer:
        page.get_by_role("button", name="Delete my account").click()
    assert answer.value.status == 400
    assert answer.value.request.method == "POST"
    expect(page.locator("body")).to_contain_text("This form has expired")

    # The same POST from the page's context: no token, then a forged one.
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf_token": "forged." + "A" * 40}]
    for data in forms:
        refused = page.request.post(f"{app}/account/delete", form=data, max_redirects=0)
        assert refused.status == 400, (data, refused.status)

    assert gatehouse_cookie(page) == cookie
    page.goto(f"{app}/profile")
    expect(page).to_have_url(f"{app}/profile")
    assert signed_in_as(page) == provider_name(user_login)
    assert deployment.user(user_login) is not None
    assert "account_deleted" not in audit_kinds(deployment, user_login)
    assert len(device_list(page, app)) == 1
