"""The dashboard: data the server fetched from the provider's UserInfo with the user's token, no token in the page."""

from __future__ import annotations

import pytest
import requests

from tests.integration.pages import table
from tests.integration.provider import set_user_claims
from tests.support.browserless import TIMEOUT, session_id, sign_in
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_dashboard_shows_data_fetched_server_side_with_the_users_token(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    set_user_claims(stack.provider_url, subject, {"email": f"{subject}@example.org"})
    sign_in(browser, stack.web_url, subject, next_path="/")
    # Changed at the provider after sign-in: only a live UserInfo call can show it.
    set_user_claims(stack.provider_url, subject, {"email": f"changed-{subject}@example.org"})

    page = browser.get(f"{stack.web_url}/dashboard", timeout=TIMEOUT)

    assert page.status_code == 200
    assert table(page.text, "api-data") == {"sub": subject, "email": f"changed-{subject}@example.org"}
    record = stack.session_record(session_id(browser) or "")
    assert record is not None
    assert record["user"]["email"] == f"{subject}@example.org"


def test_tokens_never_reach_the_browser(stack: Stack, browser: requests.Session, subject: str) -> None:
    sign_in(browser, stack.web_url, subject, next_path="/dashboard")
    record = stack.session_record(session_id(browser) or "")
    assert record is not None
    tokens = [record["tokens"][name] for name in ("access_token", "refresh_token", "id_token")]
    assert all(tokens)

    for path in ("/dashboard", "/profile", "/"):
        page = browser.get(f"{stack.web_url}{path}", timeout=TIMEOUT)
        assert page.status_code == 200, path
        for token in tokens:
            assert token not in page.text, f"a token appears in {path}"
        assert all(token not in value for value in page.headers.values() for token in tokens)
