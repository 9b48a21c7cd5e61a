"""Session timeouts: an idle timeout that slides with use, an absolute one counted from sign-in."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from config import ConfigError, load_settings
from tests.security.checks import MINIMAL_ENVIRON
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.support.polling import wait_until
from tests.support.session_records import session_exists

pytestmark = pytest.mark.integration


def met_at(condition: Callable[[], bool]) -> Callable[[], float | None]:
    """A probe for wait_until that returns when (monotonic) `condition` first held."""
    return lambda: time.monotonic() if condition() else None


def test_idle_timeout_slides_with_use_and_ends_an_idle_session(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """With a 2 s idle timeout, steady use keeps the session past 2 s; 2 to 3 s without a request ends it.

    The expiry slides when the last-seen time is written (every second here), to the timeout plus that second.
    """
    gatehouse.configure(SESSION_IDLE_TIMEOUT=2, SESSION_LAST_SEEN_INTERVAL=1, SESSION_ABSOLUTE_TIMEOUT=3600)
    browser = gatehouse.browser()
    browser.sign_in("alice")
    sid = browser.session_id
    signed_in_at = time.monotonic()

    # Keep using the site for well over the idle timeout.
    while time.monotonic() - signed_in_at < 3.5:
        assert browser.signed_in_as() == "Alice"
        last_request = time.monotonic()
        time.sleep(0.4)

    # Now stay away (watching Redis, not the app, so nothing slides it) until the record expires.
    expired_at = wait_until(met_at(lambda: not session_exists(gatehouse.redis, sid)), timeout=6, interval=0.05)
    assert 1.5 <= expired_at - last_request <= 3 + 1
    assert browser.signed_in_as() is None
    assert browser.get("/profile").headers["Location"].startswith("/login")


def test_absolute_timeout_counts_from_sign_in_whatever_happens_since(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """A 3 s absolute timeout ends a busy session on time; profile edits and token refreshes do not reset it."""
    gatehouse.configure(SESSION_IDLE_TIMEOUT=3600, SESSION_ABSOLUTE_TIMEOUT=3)
    provider.behaviour.access_token_lifetime = 1  # every dashboard view refreshes the token
    browser = gatehouse.browser()
    browser.sign_in("alice")
    signed_in_at = time.monotonic()
    created_at = gatehouse.session_record(browser.session_id)["created_at"]

    token = browser.csrf_token("/profile")
    form = {"csrf_token": token, "display_name": "Alice A.", "locale": "en", "timezone": "UTC"}
    assert browser.post("/profile", data=form).status_code == 302
    assert gatehouse.session_record(browser.session_id)["profile"]["display_name"] == "Alice A."
    assert browser.get("/dashboard").status_code == 200
    assert provider.token_requests("refresh_token") == 1
    assert gatehouse.session_record(browser.session_id)["created_at"] == created_at

    # Busy all along: a request every quarter second until the session ends.
    ended_at = wait_until(met_at(lambda: browser.signed_in_as() is None), timeout=6, interval=0.25)
    assert 3 - 0.5 <= ended_at - signed_in_at <= 3 + 1.5
    assert gatehouse.signed_in_subjects() == []


@pytest.mark.parametrize("name", ["SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"])
def test_timeouts_are_settings_checked_at_start(name: str) -> None:
    """Both timeouts come from the environment and must be positive whole seconds."""
    environ = dict(MINIMAL_ENVIRON)
    assert load_settings({**environ, name: "120"})[name] == 120
    with pytest.raises(ConfigError, match=name):
        load_settings({**environ, name: "0"})
