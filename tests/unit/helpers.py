"""Helpers the unit tests share: sign-in through the test client, session and queue inspection."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import event
from werkzeug.test import TestResponse

from extensions import db
from jobs.queues import job_queue
from tests.support import session_records
from tests.support.browserless import CSRF_FIELD
from tests.unit.mock_provider import ISSUER, MockProvider, callback_query


def add_lua_sha1hex(server: fakeredis.FakeServer) -> None:
    """Give fakeredis's Lua the `redis.sha1hex` real Redis has (fakeredis 2.40 lacks it)."""
    fakeredis.FakeRedis(server=server).eval("return 1", 0)  # creates the server's Lua runtime
    server._lua_runtime.globals().redis.sha1hex = lambda value: (
        hashlib.sha1(bytes(value), usedforsecurity=False).hexdigest().encode()
    )


class RecordingRedis(fakeredis.FakeRedis):
    """A fakeredis client that records every command sent through it (not pipelines)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Record the command, then run it."""
        self.commands.append(args)
        return super().execute_command(*args, **options)


def start_login(client: FlaskClient, next_path: str | None = "/") -> TestResponse:
    """GET /login and return the redirect to the provider."""
    response = client.get("/login", query_string={"next": next_path} if next_path is not None else None)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def sign_in(
    client: FlaskClient,
    provider: MockProvider,
    subject: str = "alice",
    next_path: str = "/",
    *,
    worker: bool = True,
    **claims: Any,
) -> TestResponse:
    """Sign `subject` in through /login, the provider and /auth/callback; return the callback response.

    With `worker`, the queued persistence job then runs here, as the worker would run it
    (it confirms the user's saved profile, which profile edits wait for).
    """
    start = start_login(client, next_path)
    code = provider.approve(start.location, subject, **claims)
    landed = client.get(f"/auth/callback?{callback_query(start.location, code=code)}")
    if worker:
        run_queued_jobs(client.application)
    return landed


def assert_sent_to_sign_in(client: FlaskClient) -> None:
    """The browser is no longer signed in: a private page sends it to /login."""
    page = client.get("/profile")
    assert page.status_code == 302
    assert page.location.startswith("/login")


def session_id(app: Flask, client: FlaskClient) -> str | None:
    """The session id the browser holds, or None."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie else None


def stored_session(app: Flask, redis: fakeredis.FakeRedis, sid: str | None) -> dict[str, Any] | None:
    """The session stored under `sid`, composed (app data, created_at, user, profile, tokens), or None."""
    return session_records.read_session(redis, sid)


def rewrite_session(app: Flask, redis: fakeredis.FakeRedis, sid: str, **changes: Any) -> None:
    """Change a stored session in place (keeping its expiry), as time passing would."""
    session_records.rewrite_session(redis, sid, **changes)


def session_exists(redis: fakeredis.FakeRedis, sid: str | None) -> bool:
    """True while Redis holds a session record under `sid`."""
    return session_records.session_exists(redis, sid)


def session_keys(redis: fakeredis.FakeRedis) -> list[bytes]:
    """Every session record in Redis."""
    return session_records.session_keys(redis)


def queued_records(app: Flask) -> list[dict[str, Any]]:
    """The records of the persistence jobs waiting on the app's queue, oldest first."""
    return [job.args[0] for job in queued_jobs(app, "accounts.persistence.persist_user")]


def queued_audit_events(app: Flask) -> list[dict[str, Any]]:
    """The audit events waiting on the app's queue, oldest first."""
    return [job.args[0] for job in queued_jobs(app, "audit.jobs.store_audit_event")]


def queued_jobs(app: Flask, function: str) -> list[Job]:
    """The jobs of one job function waiting on the app's queue, oldest first."""
    with app.app_context():
        return [job for job in job_queue().get_jobs() if job.func_name == function]


def job_record(**changes: Any) -> dict[str, Any]:
    """A persistence job's record for alice, with `changes`."""
    return {
        "issuer": ISSUER,
        "subject": "alice",
        "email": "alice@example.test",
        "name": "Alice",
        "picture": None,
        "identity_version": 1000,
        "display_name": "Alice",
        "locale": "en",
        "timezone": "UTC",
        "website": None,
        "bio": None,
        "profile_version": 0,
        **changes,
    }


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in_page_token(client: FlaskClient, path: str = "/profile") -> str:
    """Open a signed-in page and return its CSRF token."""
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return csrf_token(page.get_data(as_text=True))


@contextmanager
def counting_queries(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine runs inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run_queued_jobs(app: Flask) -> int:
    """Do what the worker would: run every queued job not run yet (in this process); returns how many ran."""
    done: set[str] = app.extensions.setdefault("tests.jobs_run", set())
    ran = 0
    with app.app_context():
        for job in job_queue().get_jobs():
            if job.id not in done:
                done.add(job.id)
                job.perform()
                ran += 1
    return ran
