"""A Gatehouse deployment for fault injection: every part real, every part separately breakable.

Unlike tests/support/stack.py, sessions and the queue may live on two Redis servers
(QUEUE_REDIS_URL), either may run with AOF, the database may be PostgreSQL, the
OpenID provider and web processes are optional, and the worker timings are
settings the test chooses. The test process also gets an in-process app built
from the same settings, to enqueue jobs and read the database directly.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from redis import Redis
from sqlalchemy import select

from devstack.processes import free_port, start_mock_provider, start_redis, stop
from tests.support.polling import wait_until
from tests.support.stack import CLIENT_ID, CLIENT_SECRET, Stack

# Worker timings for tests: a dead worker's job is retried within seconds, not minutes.
FAST_WORKER = {
    "WORKER_MONITOR_INTERVAL": 1,
    "WORKER_ABANDON_GRACE": 2,
    "WORKER_MAINTENANCE_INTERVAL": 3,
    "JOB_RETRY_INTERVALS": (0, 1, 1, 2, 2, 2),
}


@dataclass
class RedisServer:
    """One redis-server child process, restartable on the same port and data directory."""

    name: str
    port: int
    data_dir: Path
    appendonly: bool = False
    extra: Sequence[str] = ()
    # Set: the server requires AUTH with it, and `url` carries it.
    password: str | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis:// URL of database 0 (with the password, if any)."""
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server; its AOF, if on, is replayed."""
        extra = [*self.extra, *(("--requirepass", self.password) if self.password else ())]
        self.process = start_redis(self.port, data_dir=self.data_dir, appendonly=self.appendonly, extra=extra)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM: Redis flushes its AOF first)."""
        if self.process is not None:
            stop([self.process])
            self.process = None

    def crash(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self) -> Redis:
        """A client for assertions (generous timeouts, unlike the app's)."""
        return Redis(port=self.port, socket_timeout=10, password=self.password)


@dataclass
class ReliabilityStack:
    """Handles on the processes, the settings they share, and an in-process app with the same settings."""

    workdir: Path
    settings: dict[str, Any]
    sessions: RedisServer
    queue: RedisServer
    stack: Stack
    _app: Flask | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The environment every child process runs with."""
        return self.stack.env

    def app(self) -> Flask:
        """An app built from the same settings, inside this test process."""
        if self._app is None:
            from app import create_app

            self._app = create_app(self.settings)
        return self._app

    @contextmanager
    def context(self) -> Iterator[Flask]:
        """The in-process app's context (for enqueueing and database reads)."""
        app = self.app()
        with app.app_context():
            yield app

    def users(self) -> list[dict[str, Any]]:
        """Every persisted user, read straight from the database."""
        from extensions import db
        from models.user import User

        with self.context():
            try:
                return [user.to_dict() for user in db.session.execute(select(User).order_by(User.id)).scalars()]
            finally:
                db.session.remove()

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `flask --app app ARGS` as an operator would."""
        return self.stack.flask(*args, check=check)

    def start_worker(self, name: str = "worker", env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Start a `flask --app app worker` process (with its scheduler)."""
        return self.stack.start_worker(name, env)

    def idle_workers(self) -> int:
        """Workers waiting for jobs (RQ marks a worker idle after its first maintenance run)."""
        from rq import Worker

        with self.queue.client() as client:
            return sum(1 for worker in Worker.all(connection=client) if worker.get_state() == "idle")

    def wait_for_idle_workers(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` workers are up and idle."""
        wait_until(lambda: self.idle_workers() >= count, timeout=timeout, what=f"{count} idle worker(s)")

    def forget(self, name: str) -> None:
        """Reap a process the test killed itself, and stop tracking it."""
        process = self.stack.processes.pop(name)
        process.wait(timeout=10)

    def start_web(self, name: str = "web") -> str:
        """Start gunicorn (2 processes x 4 threads) and return its URL."""
        return self.stack.start_web(name)

    def log(self, name: str) -> str:
        """The tail of one process's log, for assertion messages."""
        path = Path(self.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop everything: app processes, then both Redis servers."""
        self.stack.stop()
        self.queue.stop()
        self.sessions.stop()
        if self._app is not None:
            from extensions import db

            with self._app.app_context():
                db.engine.dispose()


def env_value(value: Any) -> str:
    """A setting as the environment spells it."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def start_reliability_stack(
    workdir: Path,
    *,
    database_url: str | None = None,
    separate_queue: bool = False,
    queue_appendonly: bool = False,
    queue_redis_args: Sequence[str] = (),
    provider: bool = False,
    web: int = 0,
    workers: int = 1,
    settings: Mapping[str, Any] | None = None,
    redis_password: str | None = None,
) -> ReliabilityStack:
    """Start Redis (one, or two with `separate_queue`), optionally the provider, migrate, then workers and web."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sessions = RedisServer("sessions", free_port(), workdir / "sessions-redis")
    sessions.data_dir.mkdir(exist_ok=True)
    queue = sessions
    if separate_queue or queue_appendonly or queue_redis_args:
        queue = RedisServer(
            "queue", free_port(), workdir / "queue-redis", appendonly=queue_appendonly, extra=queue_redis_args
        )
        queue.data_dir.mkdir(exist_ok=True)
        if not separate_queue:
            sessions = queue  # one Redis for both, with the requested settings
    sessions.password = queue.password = redis_password
    processes: dict[str, subprocess.Popen] = {}
    try:
        sessions.start()
        if queue is not sessions:
            queue.start()
        provider_url = "http://127.0.0.1:9"  # never contacted unless a test signs in
        if provider:
            provider_port = free_port()
            processes["provider"] = start_mock_provider(provider_port)
            provider_url = f"http://127.0.0.1:{provider_port}"
        typed: dict[str, Any] = {
            "GATEHOUSE_ENV": "development",
            "SECRET_KEY": "reliability-tests-secret-key-0123456789abcdef",
            "REDIS_URL": sessions.url,
            "QUEUE_REDIS_URL": queue.url,
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'gatehouse.db'}",
            "OIDC_ISSUER": provider_url,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **FAST_WORKER,
            **(settings or {}),
        }
        env = {**os.environ, **{name: env_value(value) for name, value in typed.items()}}
        env["GATEHOUSE_TEST_LOGS"] = str(logs)
        stack = Stack(env=env, redis_port=sessions.port, provider_url=provider_url, processes=processes)
        running = ReliabilityStack(workdir=workdir, settings=typed, sessions=sessions, queue=queue, stack=stack)
    except BaseException:
        stop(list(processes.values()))
        queue.stop()
        sessions.stop()
        raise
    try:
        running.flask("db", "upgrade")
        for index in range(workers):
            running.start_worker(f"worker{index}")
        if workers:
            running.wait_for_idle_workers(workers)
        for index in range(web):
            running.start_web(f"web{index}")
    except BaseException:
        running.stop()
        raise
    return running
