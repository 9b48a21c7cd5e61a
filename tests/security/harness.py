"""The app under test as the security suite sees it: settings, a handle, and log capture."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import redis
from flask import Flask

from app import create_app
from connections import queue_redis, session_redis
from extensions import db
from jobs.queues import job_queue
from tests.security.browser import Browser
from tests.security.hostile_provider import CLIENT_ID, CLIENT_SECRET, HostileProvider
from tests.security.servers import APP_THREAD_NAME, SwappableApp, ThreadedServer
from tests.support.session_records import read_session, session_ids

SECRET_KEY = "security-suite-secret-key-0123456789abcdef"


def release(app: Flask) -> None:
    """Close an app's Redis connections (a test builds many apps; sockets should not wait for GC)."""
    session_redis(app).connection_pool.disconnect()
    queue_redis(app).connection_pool.disconnect()


class LogCapture(logging.Handler):
    """Every log record the app's request threads emit, at any level, formatted as a log file shows it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted line (message, arguments and any traceback) of the app's records."""
        if record.threadName == APP_THREAD_NAME:
            self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        """All captured lines."""
        return "\n".join(self.lines)


class Gatehouse:
    """The app under test: its URL, the mounted Flask app, browsers and a look into Redis."""

    def __init__(
        self,
        server: ThreadedServer,
        mount: SwappableApp,
        store: redis.Redis,
        base: dict[str, Any],
        *,
        verify: bool | str = True,
    ):
        self.server = server
        self.verify = verify
        self.url = server.url
        self._mount = mount
        self.redis = store
        self._base = base
        self.browsers: list[Browser] = []
        self.app: Flask = self.configure()

    def configure(self, **overrides: Any) -> Flask:
        """Build a new app from the base settings plus `overrides` and serve it from now on."""
        previous = getattr(self, "app", None)
        self.app = create_app({**self._base, **overrides})
        with self.app.app_context():
            db.create_all()  # the test's own SQLite file, for the persistence jobs run_queued_jobs runs
        self._mount.app = self.app
        if previous is not None:
            release(previous)
        return self.app

    def close(self) -> None:
        """Stop serving the app and release its connections and browsers."""
        self._mount.app = None
        release(self.app)
        for browser in self.browsers:
            browser.close()

    def browser(self) -> Browser:
        """A new browser with its own cookie jar."""
        browser = Browser(
            self.url,
            cookie_name=self.app.config["SESSION_COOKIE_NAME"],
            verify=self.verify,
            after_sign_in=self.run_queued_jobs,
        )
        self.browsers.append(browser)
        return browser

    def run_queued_jobs(self) -> None:
        """Do the worker's part in this process: run the queued persistence jobs (they confirm saved profiles)."""
        with self.app.app_context():
            queue = job_queue()
            for job in queue.get_jobs():
                job.perform()
                queue.remove(job)
            db.session.remove()

    def session_record(self, session_id: str | None) -> dict[str, Any] | None:
        """The server-side record behind a session id, decoded (None if there is none)."""
        if not session_id:
            return None
        return read_session(self.redis, session_id)

    def session_records(self) -> dict[str, dict[str, Any]]:
        """Every stored session, by id."""
        records = {}
        for sid in session_ids(self.redis):
            record = read_session(self.redis, sid)
            if record is not None:
                records[sid] = record
        return records

    def signed_in_subjects(self) -> list[str]:
        """The subjects of every signed-in session in Redis."""
        return [record["user"]["subject"] for record in self.session_records().values() if "user" in record]


def base_settings(redis_url: str, provider: HostileProvider, workdir: Path) -> dict[str, Any]:
    """Settings every test app starts from (development: plain http on 127.0.0.1)."""
    return {
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "REDIS_URL": redis_url,
        "QUEUE_REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "API_BASE_URL": "",
        # Generous limits: only the rate-limit tests tighten them.
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "LOGIN_RATE_LIMIT_PER_NETWORK": "100000 per minute",
        "LOGIN_RATE_LIMIT_TOTAL": "100000 per minute",
        "CALLBACK_RATE_LIMIT": "1000 per minute",
        "USER_ACTION_RATE_LIMIT": "100000 per minute",
    }
