"""Production settings over real TLS: `__Host-` Secure cookie, HSTS, strict CSRF, the whole sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import redis

from tests.security.harness import Gatehouse, LogCapture, base_settings
from tests.security.hostile_provider import HostileProvider
from tests.security.leaks import assert_no_leaks
from tests.security.servers import SwappableApp, ThreadedServer
from tests.security.tls import make_certificate, server_context

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that the app and the test browser trust."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_provider(certificate: tuple[Path, Path]) -> Iterator[HostileProvider]:
    """The hostile provider, served over https."""
    provider = HostileProvider(ssl_context=server_context(*certificate)).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def https_server(certificate: tuple[Path, Path]) -> Iterator[tuple[ThreadedServer, SwappableApp]]:
    """An https server for the app under test."""
    mount = SwappableApp()
    server = ThreadedServer(mount, ssl_context=server_context(*certificate)).start()
    yield server, mount
    server.stop()


@pytest.fixture
def production(
    certificate: tuple[Path, Path],
    https_provider: HostileProvider,
    https_server: tuple[ThreadedServer, SwappableApp],
    redis_client: redis.Redis,
    redis_url: str,
    captured_logs: LogCapture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gatehouse]:
    """Gatehouse with GATEHOUSE_ENV=production behind https, trusting the test certificate."""
    redis_client.flushdb()
    https_provider.reset()
    # The app's own calls to the provider (requests) trust the test certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    settings = {
        **base_settings(redis_url, https_provider, tmp_path),
        "GATEHOUSE_ENV": "production",
        "SECRET_KEY": "production-grade-secret-key-0123456789abcdef",
        "PUBLIC_URL": https_server[0].url,
    }
    server, mount = https_server
    handle = Gatehouse(server, mount, redis_client, settings, verify=str(certificate[0]))
    yield handle
    handle.close()
    assert_no_leaks(https_provider, handle.browsers, captured_logs.text)


def test_production_cookie_is_secure_and_host_prefixed(production: Gatehouse, https_provider: HostileProvider) -> None:
    """`__Host-` name, Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain, set over https."""
    assert production.app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    browser = production.browser()
    response = browser.sign_in("alice")
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie[browser.cookie_name]
    assert browser.cookie_name == "__Host-gatehouse_session"
    assert morsel["secure"] is True and morsel["httponly"] is True
    assert morsel["samesite"] == "Lax" and morsel["path"] == "/" and morsel["domain"] == ""
    assert browser.signed_in_as() == "Alice"


def test_https_responses_carry_hsts(production: Gatehouse, https_provider: HostileProvider) -> None:
    """Every https response tells the browser to stay on https for a year."""
    browser = production.browser()
    for response in (browser.get("/"), browser.get("/login"), browser.get("/no-such-page")):
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000"), response.url


def test_the_whole_journey_works_under_production_settings(
    production: Gatehouse, https_provider: HostileProvider
) -> None:
    """Sign in, edit the profile (same-origin Referer, as browsers send over https), sign out."""
    browser = production.browser()
    browser.sign_in("alice", next_path="/profile")
    referer = {"Referer": f"{production.url}/profile", "Origin": production.url}
    form = {"csrf_token": browser.csrf_token(), "display_name": "Alice P.", "locale": "en", "timezone": "UTC"}
    assert browser.post("/profile", data=form, headers=referer).status_code == 302
    assert browser.signed_in_as() == "Alice P."
    # Over https Flask-WTF also wants a same-origin Referer (strict mode).
    assert browser.post("/logout", data={"csrf_token": browser.csrf_token()}).status_code == 400
    signed_out = browser.post("/logout", data={"csrf_token": browser.csrf_token()}, headers=referer)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"].startswith(f"{https_provider.issuer}/end-session?")
    assert production.session_records() == {}
