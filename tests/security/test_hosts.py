"""The Host header: with PUBLIC_URL set, every absolute URL comes from it and other hosts are refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from config import ConfigError, load_settings
from tests.security.checks import MINIMAL_ENVIRON
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration


def redirect_uri_of(response: requests.Response) -> str:
    """The redirect_uri a /login redirect sends to the provider."""
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"][0]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost"])
def test_a_forged_host_is_refused(gatehouse: Gatehouse, provider: HostileProvider, host: str) -> None:
    """Any Host other than PUBLIC_URL's gets a 400 and never reaches the provider."""
    gatehouse.configure(PUBLIC_URL=gatehouse.url)
    response = requests.get(f"{gatehouse.url}/login", headers={"Host": host}, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert provider.authorize_params() == []


def test_redirect_uris_come_from_public_url(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """redirect_uri and the post-logout URL are PUBLIC_URL-based, whatever forwarded headers claim."""
    gatehouse.configure(PUBLIC_URL=gatehouse.url)
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example"}
    start = requests.get(f"{gatehouse.url}/login", headers=forged, allow_redirects=False, timeout=10)
    assert redirect_uri_of(start) == f"{gatehouse.url}/auth/callback"
    browser = gatehouse.browser()
    browser.sign_in("alice")
    signed_out = browser.post("/logout", data={"csrf_token": browser.csrf_token()}, headers=forged)
    assert signed_out.status_code == 302
    target = parse_qs(urlsplit(signed_out.headers["Location"]).query)["post_logout_redirect_uri"][0]
    assert target == f"{gatehouse.url}/login?reason=signed_out"


def test_without_public_url_forwarded_headers_are_ignored(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """With no trusted proxy (PROXY_FIX_HOPS=0), X-Forwarded-Host cannot steer the redirect URI."""
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    start = requests.get(f"{gatehouse.url}/login", headers=forged, allow_redirects=False, timeout=10)
    assert redirect_uri_of(start) == f"{gatehouse.url}/auth/callback"


@pytest.mark.parametrize(
    "setting",
    [{"API_BASE_URL": "http://api.internal/"}, {"PUBLIC_URL": "http://gatehouse.example"}, {"PUBLIC_URL": ""}],
)
def test_production_refuses_settings_that_send_secrets_in_clear(setting: dict[str, str]) -> None:
    """Bearer tokens go to API_BASE_URL and codes to PUBLIC_URL: production refuses http (or no PUBLIC_URL)."""
    environ = {
        **MINIMAL_ENVIRON,
        "GATEHOUSE_ENV": "production",
        "SECRET_KEY": "production-grade-secret-key-0123456789abcdef",
        "DATABASE_URL": "postgresql://db.internal/gatehouse",
        "PUBLIC_URL": "https://gatehouse.example",
        **setting,
    }
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    name = next(iter(setting))
    assert any(problem.startswith(name) for problem in refused.value.problems), refused.value.problems
