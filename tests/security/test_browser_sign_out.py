"""Issue 9, item 6, in production mode over TLS: Chromium signs out from the sign-in failure page.

A page served with `Referrer-Policy: no-referrer` makes Chromium post its forms with
`Origin: null` and no `Referer`: the cross-site check answers 403, and over https
Flask-WTF's strict Referer check (WTF_CSRF_SSL_STRICT) would refuse the post too.
/auth/failed carries no code or state, so it has the app-wide policy and its
"Sign out" button works. The plain-http variant is tests/e2e/test_failed_sign_in_sign_out.py.

The browser's responses are not recorded by the suite's Browser helper; the leak
check after the test still reads every log line the app wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from playwright.sync_api import BrowserContext, Request, sync_playwright

from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.session_records import session_ids

pytestmark = pytest.mark.integration


def in_a_fresh_chromium(journey: Callable[[BrowserContext], None]) -> None:
    """Run `journey` in a new Chromium profile (trusting the test certificate) on a thread of its own.

    Playwright's sync API will not start while another sync driver runs on the same thread, and
    the e2e suite keeps one open for the whole session when one pytest run holds both suites.
    """

    def run() -> None:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(ignore_https_errors=True)
                context.set_default_timeout(15_000)
                journey(context)
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium") as pool:
        pool.submit(run).result()


def test_chromium_signs_out_from_the_failure_page_over_tls(
    production: Gatehouse, https_provider: HostileProvider, redis_client: redis.Redis
) -> None:
    """Signed in, open /auth/failed, click "Sign out": 302 to the provider's end-session endpoint, session gone."""
    in_a_fresh_chromium(lambda context: sign_out_from_the_failure_page(context, production, https_provider))
    assert len(https_provider.end_session_calls) == 1
    assert session_ids(redis_client) == [] and production.session_records() == {}


def sign_out_from_the_failure_page(
    context: BrowserContext, production: Gatehouse, https_provider: HostileProvider
) -> None:
    """The journey itself, in Chromium: sign in as Alice, open /auth/failed, click "Sign out"."""
    app, redis_client = production.url, production.redis
    page = context.new_page()

    # /login sends the browser to the provider; its /authorize signs in whoever `login_as` names.
    start = page.request.get(f"{app}/login", max_redirects=0)
    assert start.status == 302 and start.headers["location"].startswith(f"{https_provider.issuer}/authorize?")
    page.goto(start.headers["location"] + "&login_as=alice")
    assert page.url == f"{app}/"
    assert page.get_by_test_id("signed-in-as").inner_text() == "Alice"
    cookie = next(c for c in context.cookies(app) if c["name"] == "__Host-gatehouse_session")
    assert cookie["secure"] and session_ids(redis_client) == [cookie["value"]]

    failed = page.goto(f"{app}/auth/failed?reason=failed")
    assert failed is not None and failed.status == 400
    assert failed.headers["strict-transport-security"].startswith("max-age=")

    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    with page.expect_response(f"{app}/logout") as logout:
        page.get_by_test_id("sign-out").click()
    assert logout.value.status == 302, f"sign-out answered {logout.value.status}: {logout.value.text()[:200]}"
    assert logout.value.headers["location"].startswith(f"{https_provider.issuer}/end-session?")
    # What made it pass: the browser sent our origin and a same-origin Referer (Flask-WTF's strict check).
    assert failed.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    sent = posts[0].all_headers()
    assert sent.get("origin") == app, sent
    assert sent.get("referer") == f"{app}/auth/failed?reason=failed", sent

    page.wait_for_url(f"{https_provider.issuer}/end-session?*")
    assert page.locator("body").inner_text() == "signed out at the provider"
    assert not [c for c in context.cookies(app) if c["name"] == "__Host-gatehouse_session"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, 302),
        ({"Origin": "null"}, 403),
        ({"Origin": "null", "Sec-Fetch-Site": "none"}, 403),
        ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403),
    ],
    ids=["null origin, sec-fetch same-origin", "null origin alone", "null origin, sec-fetch none", "null, cross-site"],
)
def test_a_null_origin_passes_only_when_sec_fetch_site_says_same_origin(
    gatehouse: Gatehouse, provider: HostileProvider, headers: dict[str, str], status: int
) -> None:
    """What a no-referrer page of ours sends (Origin: null, Sec-Fetch-Site: same-origin) is no cross-site post."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    response = browser.post("/logout", data={"csrf_token": browser.csrf_token()}, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert (gatehouse.session_records() == {}) is (status == 302)
