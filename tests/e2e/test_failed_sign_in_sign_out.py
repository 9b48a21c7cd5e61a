"""Issue 9, item 6: the sign-in failure page's "Sign out" button works in a real browser.

/auth/failed used to be served with `Referrer-Policy: no-referrer`, so Chromium posted its
sign-out form with `Origin: null` and no `Referer`, and the cross-site check answered 403.
The TLS/production variant is tests/security/test_browser_sign_out.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.pages import provider_name, sign_in, signed_in_as
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"


@pytest.mark.parametrize(
    "failure",
    ["/auth/callback?state=bogus&code=x", "/auth/failed?reason=failed"],
    ids=["bad state at the callback", "failure page opened directly"],
)
def test_sign_out_from_the_sign_in_failure_page_signs_out(
    page: Page, deployment: Stack, user_login: str, failure: str
) -> None:
    """Signed in, land on /auth/failed, click "Sign out": the provider's end-session page, never a 403."""
    app, provider = deployment.web_url, deployment.provider.url
    sign_in(page, app, provider, user_login, "/dashboard")

    response = page.goto(f"{app}{failure}")
    assert response is not None and response.status == 400
    expect(page).to_have_url(re.compile(re.escape(f"{app}/auth/failed?reason=") + r"(expired|failed)$"))
    expect(page.get_by_test_id("login-error")).to_be_visible()
    assert signed_in_as(page) == provider_name(user_login)

    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    with page.expect_response(f"{app}/logout") as logout:
        page.get_by_test_id("sign-out").click()
    assert logout.value.status == 302, f"sign-out answered {logout.value.status}"
    assert logout.value.headers["location"].startswith(f"{provider}/session/end")
    # The page now sends its origin and a same-origin Referer (it has no code or state to hide).
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    sent = posts[0].all_headers()
    assert sent.get("origin") == app and sent.get("referer", "").startswith(f"{app}/auth/failed"), sent

    expect(page).to_have_url(re.compile(re.escape(provider) + r"/session/end"))
    expect(page.get_by_text("This request came from another site")).to_have_count(0)
    assert not [cookie for cookie in page.context.cookies(app) if cookie["name"] == SESSION_COOKIE]
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(re.compile(re.escape(f"{app}/login?reason=signed_out") + r"(&state=[\w-]+)?$"))
    expect(page.get_by_test_id("login-notice")).to_have_text("You have been signed out.")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
