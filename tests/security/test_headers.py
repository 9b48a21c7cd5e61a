"""Security headers on every response, and a content security policy the app's own pages satisfy."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.security.browser import Browser
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration

ANONYMOUS_PAGES = ["/", "/login?reason=signed_out", "/auth/failed?reason=expired", "/no-such-page", "/healthz"]
SIGNED_IN_PAGES = ["/", "/profile", "/dashboard", "/login?reason=expired", "/no-such-page"]


def csp_directives(header: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def every_kind_of_response(gatehouse: Gatehouse) -> list[requests.Response]:
    """Pages, JSON, static files, redirects and error responses, anonymous and signed in."""
    anonymous = gatehouse.browser()
    responses = [anonymous.get(path) for path in ANONYMOUS_PAGES]
    responses += [anonymous.get("/readyz"), anonymous.get("/static/style.css"), anonymous.get("/login")]
    responses.append(anonymous.get("/profile"))  # redirect to /login
    browser = gatehouse.browser()
    browser.sign_in("alice")
    responses += [browser.get(path) for path in SIGNED_IN_PAGES]
    responses.append(browser.get("/dashboard", headers={"Accept": "application/json"}))
    responses.append(browser.post("/profile", data={"display_name": "x"}))  # 400: no CSRF token
    responses.append(browser.get("/logout"))  # 405
    cross_site = {"csrf_token": browser.csrf_token(), "display_name": "x"}
    responses.append(browser.post("/profile", data=cross_site, headers={"Origin": "https://evil.example"}))  # 403
    return responses


def test_every_response_carries_the_security_headers(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """CSP with frame-ancestors 'none', nosniff, DENY framing and a referrer policy, whatever the response."""
    responses = every_kind_of_response(gatehouse)
    assert {response.status_code for response in responses} >= {200, 302, 400, 403, 404, 405}
    for response in responses:
        headers = response.headers
        where = f"{response.request.method} {response.url} ({response.status_code})"
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), where
        assert headers.get("X-Content-Type-Options") == "nosniff", where
        assert headers.get("X-Frame-Options") == "DENY", where
        assert headers.get("Referrer-Policy") in ("no-referrer", "strict-origin-when-cross-origin"), where
        assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", where
        # HSTS only means something over https (see test_production.py).
        assert "Strict-Transport-Security" not in headers, where


def test_the_policy_is_strict(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """No inline code, no wildcards; forms post only to the app (and sign-out's redirect to the provider)."""
    header = gatehouse.browser().get("/").headers["Content-Security-Policy"]
    directives = csp_directives(header)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'", provider.issuer]
    for sources in directives.values():
        for source in sources:
            assert source not in ("*", "'unsafe-inline'", "'unsafe-eval'", "http:", "https:", "data:"), header


def test_sign_in_routes_keep_their_stricter_referrer_policy(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The app-wide default does not overwrite the sign-in routes' `no-referrer`."""
    browser = gatehouse.browser()
    assert browser.get("/login").headers["Referrer-Policy"] == "no-referrer"
    assert browser.get("/auth/callback?state=x&code=y").headers["Referrer-Policy"] == "no-referrer"
    # The failure page carries no code or state: the app-wide policy, so its sign-out form works (issue 9).
    assert browser.get("/auth/failed?reason=failed").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


class PageResources(HTMLParser):
    """What a page would make a browser load or run, and anything a strict CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (what, url)
        self.violations: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note inline code, inline styles and every URL the tag brings in."""
        attributes = {name: value or "" for name, value in attrs}
        for name in attributes:
            if name.startswith("on"):
                self.violations.append(f"inline event handler {name} on <{tag}>")
        if "style" in attributes:
            self.violations.append(f"inline style on <{tag}>")
        if tag == "style":
            self.violations.append("a <style> element")
        if tag in ("iframe", "object", "embed", "base", "frame"):
            self.violations.append(f"a <{tag}> element")
        if tag == "script":
            if "src" in attributes:
                self.urls.append(("script", attributes["src"]))
            else:
                self._in_script = True
        for name in ("src", "href", "action", "formaction", "poster", "data"):
            if name in attributes:
                self.urls.append((f"{tag} {name}", attributes[name]))

    def handle_data(self, data: str) -> None:
        """Inline script bodies are violations."""
        if self._in_script and data.strip():
            self.violations.append("an inline <script>")

    def handle_endtag(self, tag: str) -> None:
        """Leave a script element."""
        if tag == "script":
            self._in_script = False


def assert_page_satisfies_policy(browser: Browser, response: requests.Response, app_origin: str) -> None:
    """Nothing on the page needs more than the policy allows: only same-origin loads, no inline code or style."""
    parser = PageResources()
    parser.feed(response.text)
    assert parser.violations == [], (response.url, parser.violations)
    for what, url in parser.urls:
        target = urljoin(response.url, url)
        assert not url.lower().strip().startswith(("javascript:", "data:", "vbscript:")), (response.url, what, url)
        if what == "a href":
            continue  # links are navigations, not loads the policy restricts
        assert f"{urlsplit(target).scheme}://{urlsplit(target).netloc}" == app_origin, (response.url, what, url)
        if what == "link href":
            stylesheet = browser.get(target)
            assert stylesheet.status_code == 200
            assert stylesheet.headers["Content-Type"].startswith("text/css")
            assert "@import" not in stylesheet.text and "url(" not in stylesheet.text


def test_the_apps_own_pages_satisfy_the_policy(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Every HTML page, anonymous and signed in (including error and form-error pages), fits the CSP."""
    anonymous = gatehouse.browser()
    pages = [(anonymous, anonymous.get(path)) for path in ANONYMOUS_PAGES if path != "/healthz"]
    browser = gatehouse.browser()
    browser.sign_in("alice")
    pages += [(browser, browser.get(path)) for path in SIGNED_IN_PAGES]
    token = browser.csrf_token()
    invalid = browser.post("/profile", data={"csrf_token": token, "display_name": "", "website": "ftp://x"})
    pages.append((browser, invalid))
    for owner, response in pages:
        assert response.headers["Content-Type"].startswith("text/html"), response.url
        assert_page_satisfies_policy(owner, response, gatehouse.url)
