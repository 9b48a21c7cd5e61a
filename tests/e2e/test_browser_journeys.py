"""A real browser against the certified provider: sign-in, profile, dashboard refresh, revocation, sign-out.

Every journey runs twice, on SQLite and on PostgreSQL (the `database` fixture), against
gunicorn, an RQ worker, Redis and `oidc-provider`, and asserts what the person sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.pages import (
    Screenshot,
    complete_provider_sign_in,
    first_request_url,
    provider_login_form,
    provider_name,
    sign_in,
    signed_in_as,
)
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"


def test_sign_in_through_the_provider_lands_on_the_page_asked_for(
    page: Page, deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """An anonymous visit to /dashboard goes through the provider's login and consent pages and comes back there."""
    app, provider = deployment.web_url, deployment.provider.url

    page.goto(f"{app}/dashboard")
    assert urlsplit(page.url).netloc == urlsplit(provider).netloc, "an anonymous visitor must be sent to sign in"
    complete_provider_sign_in(page, provider, user_login, screenshot)

    expect(page).to_have_url(f"{app}/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert signed_in_as(page) == provider_name(user_login)


def test_profile_edit_refuses_bad_input_then_saves_good_input_through_the_worker(
    page: Page, deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Each bad field gets its own message and nothing changes; good values show at once and reach the database."""
    app = deployment.web_url
    original_name = provider_name(user_login)
    sign_in(page, app, deployment.provider.url, user_login, "/profile")
    first_row = wait_until(lambda: deployment.user(user_login), timeout=30, what="the sign-in to persist the user")
    assert first_row["display_name"] == original_name

    page.fill("#display_name", "   ")
    # A browser offers only listed languages and zones; a tampered request can send anything.
    page.evaluate(
        """() => {
            for (const [id, value] of [['locale', 'tlh'], ['timezone', 'Mars/Olympus_Mons']]) {
                const select = document.getElementById(id);
                select.add(new Option(value, value));
                select.value = value;
            }
        }"""
    )
    page.fill("#website", "javascript:alert(1)")
    # Pasted text can carry invisible characters (maxlength already stops over-long input).
    page.fill("#bio", "Engines\u200b and looms")
    page.get_by_role("button", name="Save profile").click()

    expect(page.get_by_role("alert")).to_have_text("Please correct the marked fields. Nothing has been saved.")
    expected_errors = {
        "display_name": "Enter a display name.",
        "locale": "Choose a language from the list.",
        "timezone": "Choose a time zone from the list, such as Europe/Paris.",
        "website": "Enter a web address starting with http:// or https://.",
        "bio": "Remove control or invisible characters.",
    }
    for field, message in expected_errors.items():
        expect(page.get_by_test_id(f"error-{field}")).to_have_text(message)
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "profile-errors")

    page.goto(f"{app}/profile")
    assert signed_in_as(page) == original_name
    expect(page.locator("#display_name")).to_have_value(original_name)
    expect(page.locator("#website")).to_have_value("")
    assert deployment.user(user_login)["profile_version"] == first_row["profile_version"]

    page.fill("#display_name", "Ada Lovelace")
    page.select_option("#locale", "fr")
    page.select_option("#timezone", "Asia/Tokyo")
    page.fill("#website", "https://ada.example.org/notes")
    page.fill("#bio", "Wrote the first program.\nLikes engines.")
    page.get_by_role("button", name="Save profile").click()

    # Post/Redirect/Get: the next page is a fresh GET of the profile showing the new values.
    expect(page).to_have_url(f"{app}/profile")
    expect(page.get_by_role("status")).to_have_text("Your profile has been saved.")
    assert signed_in_as(page) == "Ada Lovelace"
    expect(page.locator("#locale")).to_have_value("fr")
    expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")
    expect(page.locator("#website")).to_have_value("https://ada.example.org/notes")
    expect(page.locator("#bio")).to_have_value("Wrote the first program.\nLikes engines.")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    screenshot(page, "profile-saved")
    page.goto(f"{app}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")

    saved = wait_until(
        lambda: (row := deployment.user(user_login)) and row["display_name"] == "Ada Lovelace" and row,
        timeout=30,
        interval=0.3,
        what="the worker to persist the profile edit",
    )
    assert (saved["locale"], saved["timezone"], saved["website"], saved["bio"]) == (
        "fr",
        "Asia/Tokyo",
        "https://ada.example.org/notes",
        "Wrote the first program.\nLikes engines.",
    )
    assert saved["profile_version"] > first_row["profile_version"]
    assert len([row for row in deployment.users() if row["subject"] == user_login]) == 1


def test_dashboard_shows_api_data_and_refreshes_an_expired_token_unnoticed(
    page: Page, deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Downstream data shows; once the provider has expired every access token, the next visit still just works."""
    app, provider = deployment.web_url, deployment.provider
    provider.set_access_token_ttl(user_login, 2)
    sign_in(page, app, provider.url, user_login, "/dashboard")

    data = page.get_by_test_id("api-data")
    expect(data).to_contain_text(f"{user_login}@example.test")
    expect(data).to_contain_text("Europe/Paris")
    screenshot(page, "dashboard")

    wait_until(
        lambda: provider.account(user_login)["live_access_tokens"] == 0,
        timeout=15,
        what="the provider to expire the access tokens",
    )
    refreshes_before = provider.account(user_login)["refresh_grants"]
    browser_requests: list[str] = []
    page.on("request", lambda request: browser_requests.append(request.url))

    page.reload()

    expect(page).to_have_url(f"{app}/dashboard")
    expect(page.get_by_test_id("api-data")).to_contain_text(f"{user_login}@example.test")
    assert not [url for url in browser_requests if url.startswith(provider.url)], "the browser was sent to the provider"
    assert provider.account(user_login)["refresh_grants"] > refreshes_before, "no refresh happened"


def test_revoked_refresh_token_ends_the_session_and_the_old_cookie_opens_nothing(
    page: Page,
    deployment: Stack,
    user_login: str,
    screenshot: Screenshot,
    open_context: Callable[[], BrowserContext],
) -> None:
    """Revoked at the provider: the next visit lands on /login with a message; the stolen cookie is worthless."""
    app, provider = deployment.web_url, deployment.provider
    sign_in(page, app, provider.url, user_login, "/dashboard")
    expect(page.get_by_test_id("api-data")).to_contain_text(user_login)
    old_cookie = [cookie for cookie in page.context.cookies(app) if cookie["name"] == SESSION_COOKIE]
    assert len(old_cookie) == 1

    assert provider.revoke(user_login)["revoked"] > 0

    page.goto(f"{app}/dashboard")
    expect(page).to_have_url(f"{app}/login?reason=expired")
    expect(page.get_by_test_id("login-notice")).to_have_text("Your session has ended. Please sign in again.")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
    screenshot(page, "session-ended")

    replay = open_context().new_page()
    replay.context.add_cookies(old_cookie)
    for path in ("/profile", "/dashboard"):
        response = replay.goto(f"{app}{path}")
        assert response is not None and first_request_url(response) == f"{app}{path}"
        provider_login_form(replay, provider.url)
        assert user_login not in replay.locator("body").inner_text()
    replay.goto(f"{app}/")
    expect(replay.get_by_role("heading", level=1)).to_have_text("Welcome to Gatehouse")


def test_sign_out_ends_the_provider_session_and_back_shows_no_private_data(
    page: Page, deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Sign out goes through the provider's end-session page; afterwards nothing private is reachable."""
    app, provider = deployment.web_url, deployment.provider.url
    display_name = provider_name(user_login)
    sign_in(page, app, provider, user_login, "/dashboard")
    for path in ("/dashboard", "/profile"):
        response = page.goto(f"{app}{path}")
        assert response is not None and response.headers["cache-control"] == "no-store", path
    assert signed_in_as(page) == display_name

    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(re.compile(re.escape(provider) + r"/session/end"))
    screenshot(page, "provider-sign-out")
    page.get_by_role("button", name="Yes, sign me out").click()

    # Authlib adds a `state` to the end-session request, which the provider hands back.
    expect(page).to_have_url(re.compile(re.escape(f"{app}/login?reason=signed_out") + r"(&state=[\w-]+)?$"))
    expect(page.get_by_test_id("login-notice")).to_have_text("You have been signed out.")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
    screenshot(page, "signed-out")
    assert not [cookie for cookie in page.context.cookies(app) if cookie["name"] == SESSION_COOKIE]

    # Back through history until the profile's entry: no step may show the signed-out user's data.
    reached_profile = False
    for _ in range(4):
        response = page.go_back()
        body = page.locator("body").inner_text()
        assert display_name not in body and f"{user_login}@example.test" not in body, f"private data at {page.url}"
        if response is not None and first_request_url(response) == f"{app}/profile":
            provider_login_form(page, provider)
            reached_profile = True
            break
    assert reached_profile, "going back never reached the profile page's history entry"

    # The provider's session ended too: signing in again asks for the login form.
    page.goto(f"{app}/login")
    provider_login_form(page, provider)
