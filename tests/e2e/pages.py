"""What a person does in the browser: the provider's sign-in pages, and reading Gatehouse's pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page, Response, expect

from tests.e2e.http_sign_in import PASSWORD

Screenshot = Callable[[Page, str], Path]


def provider_login_form(page: Page, provider_url: str) -> None:
    """Assert the page is the provider's own login form (not an instant sign-in)."""
    expect(page).to_have_url(re.compile(re.escape(provider_url) + r"/interaction/[\w-]+$"))
    expect(page.locator("input[name=login]")).to_be_visible()
    expect(page.locator("input[name=password]")).to_be_visible()


def complete_provider_sign_in(page: Page, provider_url: str, login: str, screenshot: Screenshot | None = None) -> None:
    """Type the login and password into the provider's form, then give consent on its next page."""
    provider_login_form(page, provider_url)
    if screenshot:
        screenshot(page, "sign-in")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign-in").click()
    # The consent page: oidc-provider's form posts prompt=consent.
    expect(page.locator("input[name=prompt][value=consent]")).to_have_count(1)
    page.get_by_role("button", name="Continue").click()


def sign_in(
    page: Page, app_url: str, provider_url: str, login: str, next_path: str, screenshot: Screenshot | None = None
) -> None:
    """Open /login?next=…, sign in through the provider's pages and arrive at `next_path`."""
    page.goto(f"{app_url}/login?next={quote(next_path)}")
    complete_provider_sign_in(page, provider_url, login, screenshot)
    expect(page).to_have_url(f"{app_url}{next_path}")


def provider_name(login: str) -> str:
    """The `name` claim provider.mjs gives a login: its parts, each capitalised ("ada-x1" -> "Ada X1")."""
    return " ".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.\s]", login) if part)


def signed_in_as(page: Page) -> str:
    """The name the page header shows for the signed-in user."""
    return page.get_by_test_id("signed-in-as").inner_text()


def first_request_url(response: Response) -> str:
    """The URL a navigation started at, before any redirect."""
    request = response.request
    while request.redirected_from is not None:
        request = request.redirected_from
    return request.url
