"""Sign in over plain HTTP through the certified provider's real login and consent forms."""

from __future__ import annotations

import html
import re

import requests

from tests.support import browserless
from tests.support.browserless import TIMEOUT

# oidc-provider's interaction pages: one form per step, told apart by its hidden `prompt` field.
INTERACTION_FORM = re.compile(
    r'<form[^>]*action="(?P<action>[^"]+)"[^>]*method="post">\s*'
    r'<input type="hidden" name="prompt" value="(?P<prompt>\w+)"'
)
PASSWORD = "correct horse battery staple"


def interaction_form(page: requests.Response) -> tuple[str, str]:
    """The (prompt, absolute action URL) of the provider page's interaction form."""
    match = INTERACTION_FORM.search(page.text)
    assert match, f"no interaction form at {page.url}: {page.text[:500]}"
    return match.group("prompt"), html.unescape(match.group("action"))


def provider_forms(http: requests.Session, base_url: str, authorize_url: str, login: str) -> requests.Response:
    """oidc-provider's login form, then its consent form; redirects are followed back into the app."""
    page = http.get(authorize_url, timeout=TIMEOUT)
    for _ in range(3):
        if page.url.startswith(base_url):
            break
        prompt, action = interaction_form(page)
        fields = {"prompt": prompt}
        if prompt == "login":
            fields |= {"login": login, "password": PASSWORD}
        page = http.post(action, data=fields, timeout=TIMEOUT)
    return page


def sign_in(http: requests.Session, base_url: str, login: str, next_path: str = "/") -> requests.Response:
    """/login -> provider login form -> consent form -> /auth/callback -> `next_path`; returns the last page."""
    page = browserless.sign_in(http, base_url, login, next_path, through=provider_forms)
    assert page.url == f"{base_url}{next_path}", f"sign-in of {login} ended at {page.url} ({page.status_code})"
    assert page.status_code == 200, page.text[:500]
    return page
