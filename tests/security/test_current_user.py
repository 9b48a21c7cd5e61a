"""Flask-Login's `current_user` on the real stack: from the Redis session, with no SQL and one round trip.

A real HTTP server, a real redis-server and the provider over HTTP: after a real sign-in,
signed-in pages show the user from the session without the database being touched (no
statement, not even a pooled connection checked out) and with one Redis round trip each;
and `current_user` follows the session's validity checks (a revoked session is anonymous
on its next request, whatever it was a moment before).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from extensions import db
from tests.security.harness import Gatehouse
from tests.security.hostile_provider import HostileProvider
from tests.support.redis_monitor import recording

pytestmark = pytest.mark.integration

# /sessions is left out: it shows the user's recent activity, which the audit trail keeps in SQL.
PAGES = ["/", "/profile"]


@contextmanager
def database_use(gatehouse: Gatehouse) -> Iterator[list[str]]:
    """Every SQL statement, and every connection taken from the pool, of the app's engine during the block."""
    used: list[str] = []

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        used.append(sql)

    def checkout(*args: Any) -> None:
        used.append("pool checkout")

    with gatehouse.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    try:
        yield used
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)


def test_signed_in_pages_need_no_database(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """The user's name on every signed-in page comes from the session: no statement, no connection."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    gatehouse.run_queued_jobs()  # the sign-in's own persistence job, so nothing is left for later
    with database_use(gatehouse) as used:
        for path in PAGES:
            page = browser.get(path)
            assert page.status_code == 200, (path, page.status_code)
            assert 'data-testid="signed-in-as">Alice<' in page.text, path
    assert used == [], used


def test_one_redis_round_trip_per_page(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Flask-Login reads no Redis of its own: the home and profile pages are one EVALSHA each."""
    browser = gatehouse.browser()
    browser.sign_in("alice")
    browser.get("/")  # the first page stores the session's CSRF token; count the ones after it
    port = urlsplit(gatehouse.app.config["REDIS_URL"]).port
    assert port
    with recording(port) as recorded:
        for path in ["/", "/profile", "/", "/profile"]:
            assert browser.get(path).status_code == 200
    assert recorded.sent_names() == ["EVALSHA"] * 4


def test_a_revoked_session_is_anonymous_at_once(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Another device signs this one out: its next request has an anonymous current_user and is sent to sign in."""
    laptop, phone = gatehouse.browser(), gatehouse.browser()
    laptop.sign_in("alice")
    phone.sign_in("alice")
    assert laptop.signed_in_as() == "Alice"
    revoked = phone.post("/sessions/revoke-others", data={"csrf_token": phone.csrf_token("/sessions")})
    assert revoked.status_code in (302, 303)
    assert laptop.signed_in_as() is None
    refused = laptop.get("/profile", allow_redirects=False)
    assert refused.status_code == 302
    assert urlsplit(refused.headers["Location"]).path == "/login"
    assert phone.signed_in_as() == "Alice"


def test_a_remember_me_cookie_signs_no_one_in(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """Flask-Login's remember-me cookie is never honoured, whatever it holds."""
    browser = gatehouse.browser()
    browser.http.cookies.set("remember_token", "alice|" + "0" * 128, domain="127.0.0.1", path="/")
    assert browser.signed_in_as() is None
    assert browser.get("/profile", allow_redirects=False).status_code == 302
