"""Open redirects: `next` and the post-logout target refuse Django's bad-URL corpus and keep local paths."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.security.bad_urls import BAD_URLS, GOOD_LOCAL_PATHS
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider

pytestmark = pytest.mark.integration

HREF = re.compile(r'href="([^"]*)"')


def assert_links_stay_local(html: str) -> None:
    """Every link on the page is a plain local path."""
    for href in HREF.findall(html):
        assert href.startswith("/") and not href.startswith("//") and "\\" not in href, href
        assert "example.com" not in href, href


@pytest.mark.parametrize("bad", BAD_URLS, ids=[repr(url)[:60] for url in BAD_URLS])
def test_bad_targets_are_refused_after_sign_in_and_sign_out(
    gatehouse: Gatehouse, provider: HostileProvider, bad: str
) -> None:
    """`next` after sign-in falls back to "/"; sign-out and its landing page never point anywhere else."""
    browser = gatehouse.browser()

    landed = browser.sign_in("alice", next_path=bad)
    assert landed.headers["Location"] == "/"

    token = browser.csrf_token("/profile")
    signed_out = browser.post(f"/logout?next={bad}", data={"csrf_token": token, "next": bad})
    assert signed_out.status_code == 302
    location = signed_out.headers["Location"]
    assert location.startswith(f"{provider.issuer}/end-session?")
    post_logout = parse_qs(urlsplit(location).query)["post_logout_redirect_uri"]
    assert post_logout == [f"{gatehouse.url}/login?reason=signed_out"]

    # Where the provider sends the browser back, with an attacker's `next` added.
    landing = browser.get("/login", params={"reason": "signed_out", "next": bad})
    assert landing.status_code == 200
    assert 'href="/login?next=/"' in landing.text
    assert_links_stay_local(landing.text)


@pytest.mark.parametrize("path", GOOD_LOCAL_PATHS)
def test_ordinary_local_paths_still_work(gatehouse: Gatehouse, provider: HostileProvider, path: str) -> None:
    """The user lands exactly on the local page they asked for."""
    browser = gatehouse.browser()
    assert browser.sign_in("alice", next_path=path).headers["Location"] == path


def test_a_protected_page_brings_the_user_back_after_sign_in(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """/profile sends an anonymous visitor to /login?next=/profile, and sign-in ends there."""
    browser = gatehouse.browser()
    bounced = browser.get("/profile?tab=1")
    assert bounced.status_code == 302
    next_path = parse_qs(urlsplit(bounced.headers["Location"]).query)["next"][0]
    assert next_path == "/profile?tab=1"
    assert browser.sign_in("alice", next_path=next_path).headers["Location"] == "/profile?tab=1"
