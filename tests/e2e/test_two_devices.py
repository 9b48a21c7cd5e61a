"""One user, two devices: two browser profiles of the same person against the certified provider.

Each profile is a device with its own Gatehouse session and its own provider session (and so
its own grant and refresh token family). Every journey runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.e2e.pages import Screenshot, provider_login_form, provider_name, sign_in, signed_in_as
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"
PROVIDER_SESSION_COOKIE = "_session"
TABS_PER_DEVICE = 3


def two_devices(
    open_context: Callable[[], BrowserContext], deployment: Stack, login: str, next_path: str
) -> tuple[Page, Page]:
    """Two fresh browser profiles, each signed in as `login` through the provider's forms, on `next_path`."""
    devices = []
    for _ in range(2):
        page = open_context().new_page()
        sign_in(page, deployment.web_url, deployment.provider.url, login, next_path)
        devices.append(page)
    first, second = devices
    assert gatehouse_cookie(first) != gatehouse_cookie(second), "two devices must hold two sessions"
    return first, second


def gatehouse_cookie(page: Page) -> str | None:
    """The value of the device's Gatehouse session cookie, or None."""
    return next((c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE), None)


def provider_session_id(page: Page, provider_url: str) -> str:
    """The device's provider session: the value of the provider's `_session` cookie."""
    values = [c["value"] for c in page.context.cookies(provider_url) if c["name"] == PROVIDER_SESSION_COOKIE]
    assert len(values) == 1, f"expected one provider session cookie, got {values}"
    return values[0]


def assert_signed_in(page: Page, app_url: str, login: str, display_name: str | None = None) -> None:
    """The device still opens /dashboard signed in, with the API's data."""
    page.goto(f"{app_url}/dashboard")
    expect(page).to_have_url(f"{app_url}/dashboard")
    expect(page.get_by_test_id("api-data")).to_contain_text(f"{login}@example.test")
    assert signed_in_as(page) == (display_name or provider_name(login))


def next_page_goes_to_sign_in(page: Page, app_url: str, provider_url: str) -> list[str]:
    """Open /dashboard: Gatehouse no longer knows the device, so it goes to /login and on to the provider."""
    requested: list[str] = []

    def record(request: Request) -> None:
        if request.is_navigation_request():
            requested.append(request.url)

    page.on("request", record)
    try:
        page.goto(f"{app_url}/dashboard")
        page.wait_for_load_state()
    finally:
        page.remove_listener("request", record)
    assert requested[:2] == [f"{app_url}/dashboard", f"{app_url}/login?next=/dashboard"], requested
    assert requested[2].startswith(f"{provider_url}/auth?"), f"not sent to the provider: {requested}"
    return requested


def shows_provider_login_form(page: Page, provider_url: str, login: str) -> None:
    """The page is the provider's login form, and nothing of the user shows."""
    provider_login_form(page, provider_url)
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
    assert login not in page.locator("body").inner_text()


def test_a_profile_edit_on_one_device_shows_on_the_other_on_its_next_page(
    open_context: Callable[[], BrowserContext], deployment: Stack, user_login: str
) -> None:
    """The profile is the user's, not the session's: device 2's next page shows device 1's edit."""
    app = deployment.web_url
    first, second = two_devices(open_context, deployment, user_login, "/profile")
    assert signed_in_as(second) == provider_name(user_login)

    first.fill("#display_name", "Edited On Laptop")
    first.select_option("#timezone", "Asia/Tokyo")
    first.fill("#website", "https://laptop.example.org/")
    first.get_by_role("button", name="Save profile").click()
    expect(first.get_by_role("status")).to_have_text("Your profile has been saved.")

    second.goto(f"{app}/profile")
    assert signed_in_as(second) == "Edited On Laptop"
    expect(second.locator("#display_name")).to_have_value("Edited On Laptop")
    expect(second.locator("#timezone")).to_have_value("Asia/Tokyo")
    expect(second.locator("#website")).to_have_value("https://laptop.example.org/")

    # And back the other way: an edit on device 2 shows on device 1's next page.
    second.fill("#display_name", "Edited On Phone")
    second.get_by_role("button", name="Save profile").click()
    expect(second.get_by_role("status")).to_have_text("Your profile has been saved.")
    first.goto(f"{app}/")
    expect(first.get_by_role("heading", level=1)).to_have_text("Welcome, Edited On Phone")
    assert signed_in_as(first) == "Edited On Phone"


def test_the_devices_page_signs_the_other_device_out(
    open_context: Callable[[], BrowserContext], deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Device 1 sees both sessions on /sessions and signs device 2 out; only device 2 has to sign in again."""
    app, provider = deployment.web_url, deployment.provider.url
    first, second = two_devices(open_context, deployment, user_login, "/dashboard")

    first.get_by_role("link", name="Devices").click()
    expect(first).to_have_url(f"{app}/sessions")
    rows = first.get_by_test_id("session-row")
    expect(rows).to_have_count(2)
    expect(first.locator("[data-testid=session-row][data-current=true]")).to_have_count(1)
    expect(first.get_by_test_id("current-session")).to_have_count(1)
    other = first.locator("[data-testid=session-row]:not([data-current])")
    expect(other).to_have_count(1)
    expect(other.get_by_test_id("session-address")).to_have_text("127.0.0.1")
    expect(first.get_by_test_id("revoke-session")).to_have_count(1)
    screenshot(first, "devices")

    other.get_by_role("button", name="Sign out").click()

    expect(first).to_have_url(f"{app}/sessions")
    expect(first.get_by_role("status")).to_have_text("That device has been signed out.")
    expect(rows).to_have_count(1)
    expect(first.locator("[data-testid=session-row][data-current=true]")).to_have_count(1)
    expect(first.get_by_test_id("revoke-session")).to_have_count(0)
    screenshot(first, "devices-after-revoke")

    revoked = [cookie for cookie in second.context.cookies(app) if cookie["name"] == SESSION_COOKIE]
    assert len(revoked) == 1
    next_page_goes_to_sign_in(second, app, provider)
    if second.url.startswith(provider):
        shows_provider_login_form(second, provider, user_login)
    else:
        # Only Gatehouse's session ended: device 2's provider session is alive, so the provider
        # signs it straight back in (single sign-on). That is a new session, not the revoked one.
        expect(second).to_have_url(f"{app}/dashboard")
        assert gatehouse_cookie(second) not in (None, revoked[0]["value"]), "the revoked session came back"

    # The revoked cookie opens nothing, in a browser the provider does not know.
    replay = open_context().new_page()
    replay.context.add_cookies(revoked)
    next_page_goes_to_sign_in(replay, app, provider)
    shows_provider_login_form(replay, provider, user_login)

    assert_signed_in(first, app, user_login)


def test_the_providers_back_channel_logout_ends_only_that_devices_session(
    open_context: Callable[[], BrowserContext], deployment: Stack, user_login: str, screenshot: Screenshot
) -> None:
    """Device 2 signs out on the provider's own page: its logout token ends device 2's session and no other."""
    app, provider = deployment.web_url, deployment.provider
    first, second = two_devices(open_context, deployment, user_login, "/dashboard")

    first_sid, second_sid = (provider_session_id(page, provider.url) for page in (first, second))
    assert first_sid != second_sid
    sessions = {row["session_id"]: row for row in provider.sessions(user_login)}
    assert set(sessions) == {first_sid, second_sid}
    second_client_sid = sessions[second_sid]["sid"]
    assert second_client_sid and second_client_sid != sessions[first_sid]["sid"]
    assert provider.account(user_login)["backchannel_logouts"] == []

    second.goto(f"{provider.url}/session/end")
    second.get_by_role("button", name="Yes, sign me out").click()
    expect(second.get_by_role("button", name="Yes, sign me out")).to_have_count(0)
    screenshot(second, "provider-signed-out")

    deliveries = wait_until(
        lambda: provider.account(user_login)["backchannel_logouts"],
        timeout=15,
        what="the provider to deliver the logout token",
    )
    assert deliveries == [{"sid": second_client_sid, "ok": True, "error": None}]
    assert [row["session_id"] for row in provider.sessions(user_login)] == [first_sid]

    # Its provider session is gone too, so the provider asks for a login this time.
    next_page_goes_to_sign_in(second, app, provider.url)
    shows_provider_login_form(second, provider.url, user_login)
    assert_signed_in(first, app, user_login)


def test_both_devices_keep_working_through_a_token_expiry_under_parallel_page_loads(
    open_context: Callable[[], BrowserContext], deployment: Stack, user_login: str
) -> None:
    """Three tabs per device load /dashboard at once after expiry: one refresh per device, nobody signed out."""
    app, provider = deployment.web_url, deployment.provider
    provider.set_access_token_ttl(user_login, 2)
    first, second = two_devices(open_context, deployment, user_login, "/profile")
    tabs = []
    for device in (first, second):
        tabs.append(device)
        for _ in range(TABS_PER_DEVICE - 1):
            tab = device.context.new_page()
            tab.goto(f"{app}/profile")
            tabs.append(tab)

    wait_until(
        lambda: provider.account(user_login)["live_access_tokens"] == 0,
        timeout=15,
        what="the provider to expire the access tokens",
    )
    # The tokens the refreshes are about to get live long, so the count below is only the
    # refreshes the expired tokens need (a 2 s token would look expired again at once).
    provider.set_access_token_ttl(user_login, 3600)
    before = provider.account(user_login)
    navigations: list[str] = []
    for device in (first, second):
        device.context.on("request", lambda request: navigations.append(request.url))

    # Every tab navigates at the same moment of the browser's clock.
    start_at = int(time.time() * 1000) + 500
    for tab in tabs:
        tab.evaluate(
            "([url, at]) => { setTimeout(() => location.assign(url), Math.max(0, at - Date.now())); }",
            [f"{app}/dashboard", start_at],
        )
    for tab in tabs:
        expect(tab).to_have_url(f"{app}/dashboard")
        expect(tab.get_by_test_id("api-data")).to_contain_text(f"{user_login}@example.test")
        assert signed_in_as(tab) == provider_name(user_login)

    after = provider.account(user_login)
    assert after["refresh_reuse_detected"] == 0
    assert after["refresh_grants"] - before["refresh_grants"] == 2, "one refresh per device"
    sent_away = [url for url in navigations if re.match(re.escape(f"{app}/login") + "|" + re.escape(provider.url), url)]
    assert not sent_away, f"a tab was sent to sign in: {sent_away}"
    dashboard_loads = [url for url in navigations if url == f"{app}/dashboard"]
    assert len(dashboard_loads) == len(tabs)
