"""The one builder of a real Gatehouse deployment for tests, every part in its own child process.

`start_stack` starts one or two redis-servers (sessions and queue, optionally with AOF, extra
arguments or a password), an OpenID provider of the asked kind (the mock provider, the certified
`oidc-provider`, or none), migrates the database (SQLite, or the PostgreSQL URL given; a database
already at the latest revision, such as a copy of tests/support/migrated_databases.py's template, is
left as it is), then RQ workers (`flask --app app worker`) and gunicorn web processes started with the
repository's gunicorn.conf.py, as production runs them, each on a free 127.0.0.1 port.

The suites choose parameters (tests/integration/conftest.py, tests/reliability/helpers.py,
tests/e2e/conftest.py); the security suite mounts apps in its own process instead (its conftest).
The test process can also build an app with the same settings, to enqueue jobs and read the
database directly (`context`, `users`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests
from flask import Flask
from redis import Redis
from redis.exceptions import BusyLoadingError
from sqlalchemy import select

from devstack.processes import start_mock_provider, start_redis, stop, wait_for_port
from tests.support.certified_provider import CLIENT_ID, CLIENT_SECRET, CertifiedProvider, start_certified_provider
from tests.support.cli import run_flask
from tests.support.migrated_databases import copy_sqlite_template, is_migrated
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.session_records import read_session

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
ARTIFACTS = ROOT / "test-artifacts"

# Worker timings for tests: a dead worker's job is retried within seconds, not minutes.
FAST_WORKER = {
    "WORKER_MONITOR_INTERVAL": 1,
    "WORKER_ABANDON_GRACE": 2,
    "WORKER_MAINTENANCE_INTERVAL": 3,
    "JOB_RETRY_INTERVALS": (0, 1, 1, 2, 2, 2),
}

# Every test browser is 127.0.0.1 and the suites sign in hundreds of times a minute; the
# limits themselves are tested in tests/security/test_rate_limits.py.
GENEROUS_RATE_LIMITS = {
    name: "100000 per minute"
    for name in (
        "LOGIN_RATE_LIMIT",
        "LOGIN_RATE_LIMIT_PER_NETWORK",
        "LOGIN_RATE_LIMIT_TOTAL",
        "CALLBACK_RATE_LIMIT",
        "USER_ACTION_RATE_LIMIT",
    )
}

PROVIDER_KINDS = ("mock", "certified", None)


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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        extra = [*self.extra, *(("--requirepass", self.password) if self.password else ())]
        self.process = start_redis(self.port, data_dir=self.data_dir, appendonly=self.appendonly, extra=extra)
        # Redis takes connections while it replays its AOF and answers LOADING to them until it is done.
        with self.client() as client:
            wait_until(lambda: loaded(client), timeout=30, interval=0.02, what=f"redis {self.name} to load its data")

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


def loaded(client: Redis) -> bool:
    """True once the server answers commands (not LOADING, as while it replays its AOF)."""
    try:
        return bool(client.ping())
    except BusyLoadingError:
        return False


@dataclass
class Stack:
    """Handles on the running processes, the settings they share, and an in-process app with the same settings."""

    workdir: Path
    # Typed settings (the in-process app's), and the environment every child process runs with.
    settings: dict[str, Any]
    env: dict[str, str]
    sessions: RedisServer
    queue: RedisServer
    provider_url: str
    # The certified provider's admin handle (None for the mock provider or none).
    provider: CertifiedProvider | None = None
    web_urls: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Set when the stack runs on Redis it did not start (a Sentinel group): a client of its current primary.
    redis_client: Callable[[], Redis] | None = field(default=None, repr=False)
    _app: Flask | None = field(default=None, repr=False)

    @property
    def web_url(self) -> str:
        """The first web process."""
        return self.web_urls[0]

    @property
    def redis_port(self) -> int:
        """The sessions Redis's port."""
        return self.sessions.port

    @property
    def database_url(self) -> str:
        """The DATABASE_URL every process uses."""
        return str(self.settings["DATABASE_URL"])

    # ---- processes -----------------------------------------------------------------------
    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `flask --app app ARGS` with the stack's environment, as an operator would."""
        return run_flask(*args, env=self.env, timeout=120, check=check)

    def start_worker(self, name: str = "worker", env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Start one `flask --app app worker` process (`env` adds to the stack's environment)."""
        # The child keeps its own copy of the log file descriptor.
        with self.log_file(name) as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "worker", "--name", f"{name}-{free_port()}"],
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        return process

    def start_web(self, name: str = "web", workers: int = 2, *, port: int | None = None, threads: int = 4) -> str:
        """Start gunicorn with the repository's gunicorn.conf.py serving `app:create_app()`; returns its URL."""
        port = port or free_port()
        env = {
            **self.env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        with self.log_file(name) as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "app:create_app()"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # Registered first, so `stop` ends it even if it never comes up.
        self.processes[name] = process
        wait_for_port(port, process=process, timeout=30)
        url = f"http://127.0.0.1:{port}"
        wait_for_app(url, process)
        self.web_urls.append(url)
        return url

    def stop_process(self, name: str) -> None:
        """Stop one process of the stack (SIGTERM, then SIGKILL) and forget it."""
        process = self.processes.pop(name)
        stop([process])

    def forget(self, name: str) -> None:
        """Reap a process the test killed itself, and stop tracking it."""
        process = self.processes.pop(name)
        process.wait(timeout=10)

    def stop_redis(self) -> None:
        """Stop the sessions Redis (its port and data directory are kept for `start_redis`)."""
        self.sessions.stop()

    def start_redis(self) -> None:
        """Start the sessions Redis again on the same port and data directory."""
        self.sessions.start()

    def idle_workers(self) -> int:
        """Workers waiting for jobs (RQ marks a worker idle after its first maintenance run)."""
        from rq import Worker

        with self.queue.client() as client:
            return sum(1 for worker in Worker.all(connection=client) if worker.get_state() == "idle")

    def wait_for_idle_workers(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` workers are up and idle."""
        wait_until(lambda: self.idle_workers() >= count, timeout=timeout, what=f"{count} idle worker(s)")

    def jobs_in_flight(self) -> int:
        """Jobs queued (as `jobs status` counts them) or started, on the stack's queue."""
        from rq.registry import StartedJobRegistry

        from jobs.queues import job_queue, waiting_count

        with self.context():
            queue = job_queue()
            return waiting_count(queue) + StartedJobRegistry(queue=queue).get_job_count(cleanup=False)

    def wait_for_jobs(self, timeout: float = 30.0) -> None:
        """Wait until no job is queued or running: every earlier request's jobs have ended."""
        wait_until(lambda: self.jobs_in_flight() == 0, timeout=timeout, what="every queued job to end")

    def log_file(self, name: str) -> BinaryIO:
        """The log file of one process, under the stack's logs folder."""
        return open(Path(self.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log", "ab")

    def log(self, name: str) -> str:
        """The tail of one process's log, for assertion messages."""
        path = Path(self.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop everything: web and workers (newest first), the provider, then both Redis servers."""
        # Redis only once the others have exited: a worker still shutting down needs it
        # to deregister, and would die with a ConnectionError traceback otherwise.
        stop(list(reversed(self.processes.values())))
        self.processes.clear()
        self.queue.stop()
        self.sessions.stop()
        if self._app is not None:
            from extensions import db

            with self._app.app_context():
                db.engine.dispose()

    # ---- looking inside --------------------------------------------------------------------
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

    def redis(self) -> Redis:
        """A client of the sessions Redis, as the app sees it."""
        if self.redis_client is not None:
            return self.redis_client()
        return Redis(port=self.sessions.port, socket_timeout=5, password=self.sessions.password)

    def session_record(self, sid: str) -> dict[str, Any] | None:
        """The stored session `sid`, composed (app data, created_at, user, profile, tokens), or None."""
        with self.redis() as client:
            return read_session(client, sid)

    def users(self) -> list[dict[str, Any]]:
        """Every persisted user (`User.to_dict()`, what `flask --app app users list --json` prints), by id."""
        from extensions import db
        from models.user import User

        with self.context():
            try:
                return [user.to_dict() for user in db.session.execute(select(User).order_by(User.id)).scalars()]
            finally:
                db.session.remove()

    def user(self, subject: str) -> dict[str, Any] | None:
        """The persisted row of one subject, or None."""
        return next((row for row in self.users() if row["subject"] == subject), None)


def wait_for_app(url: str, process: subprocess.Popen, *, timeout: float = 60.0) -> None:
    """Poll /healthz until a gunicorn worker answers: the port opens before any worker has loaded the app."""

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before answering")
        try:
            return requests.get(f"{url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answers, timeout=timeout, interval=0.05, what=f"{url}/healthz to answer 200")


def env_value(value: Any) -> str:
    """A setting as the environment spells it."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def redis_servers(
    workdir: Path,
    *,
    separate_queue: bool,
    appendonly: bool,
    queue_appendonly: bool,
    queue_redis_args: Sequence[str],
    password: str | None,
) -> tuple[RedisServer, RedisServer]:
    """The sessions and queue servers (the same object when one Redis holds both)."""
    sessions = RedisServer("sessions", free_port(), workdir / "sessions-redis", appendonly=appendonly)
    queue = sessions
    if separate_queue:
        queue = RedisServer(
            "queue", free_port(), workdir / "queue-redis", appendonly=queue_appendonly, extra=queue_redis_args
        )
    elif queue_appendonly or queue_redis_args:
        # One Redis for both, with the requested settings.
        sessions.appendonly = sessions.appendonly or queue_appendonly
        sessions.extra = queue_redis_args
    sessions.password = queue.password = password
    return sessions, queue


def default_database(workdir: Path) -> str:
    """The stack's own SQLite file: a copy of the migrated template, or the file an earlier stack left there."""
    database = workdir / "gatehouse.db"
    return f"sqlite:///{database}" if database.exists() else copy_sqlite_template(database)


def start_stack(
    workdir: Path,
    *,
    web: int = 1,
    workers: int = 1,
    web_workers: int = 2,
    provider: str | None = "mock",
    database_url: str | None = None,
    separate_queue: bool = False,
    redis_appendonly: bool = False,
    queue_appendonly: bool = False,
    queue_redis_args: Sequence[str] = (),
    redis_password: str | None = None,
    token_max_age: int = 3600,
    access_token_ttl: int = 3600,
    settings: Mapping[str, Any] | None = None,
    extra_env: Mapping[str, str] | None = None,
    wait_for_workers: bool = False,
    redis_url: str | None = None,
    redis_client: Callable[[], Redis] | None = None,
    queue_on_own_redis: bool = False,
) -> Stack:
    """Start Redis (one, or two with `separate_queue`), the provider, migrate, then workers and web processes.

    With no `database_url`, the database is a SQLite file in `workdir`: a copy of the migrated template
    (or the file a stack stopped earlier left there).

    `provider`: "mock" (oidc-provider-mock; `token_max_age`), "certified" (oidc-provider with the web
    processes' exact redirect URLs; `access_token_ttl`), or None (never contacted unless a test signs in).
    `settings` (typed) reach every process and the in-process app; `extra_env` (strings) only the child
    processes. `redis_appendonly` keeps the sessions Redis's data across `stop_redis`/`start_redis`.
    `wait_for_workers`: return only once every worker is idle (has registered and run its maintenance).
    `redis_url` (with `redis_client`, a client of its current primary): sessions and queue on Redis the caller
    runs (a Sentinel group, tests/support/redis_topology.py); no redis-server of the stack's own is started,
    unless `queue_on_own_redis` puts the queue on one (a Redis Cluster holds sessions only).
    """
    if provider not in PROVIDER_KINDS:
        raise ValueError(f"provider must be one of {PROVIDER_KINDS} (got {provider!r})")
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sessions, queue = redis_servers(
        workdir,
        separate_queue=separate_queue,
        appendonly=redis_appendonly,
        queue_appendonly=queue_appendonly,
        queue_redis_args=queue_redis_args,
        password=redis_password,
    )
    # The certified provider registers the exact callback and post-logout URLs, so web ports come first.
    web_ports = [free_port() for _ in range(web)]
    processes: dict[str, subprocess.Popen] = {}
    certified: CertifiedProvider | None = None
    try:
        if redis_url is None or queue_on_own_redis:
            sessions.start()
        if queue is not sessions:
            queue.start()
        provider_url = "http://127.0.0.1:9"
        if provider == "mock":
            provider_port = free_port()
            processes["provider"] = start_mock_provider(provider_port, token_max_age=token_max_age)
            provider_url = f"http://127.0.0.1:{provider_port}"
        elif provider == "certified":
            certified = start_certified(logs, web_ports, access_token_ttl)
            processes["provider"] = certified.process
            provider_url = certified.url
    except BaseException:
        stop(list(processes.values()))
        queue.stop()
        sessions.stop()
        raise
    typed: dict[str, Any] = {
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "test-stack-secret-key-0123456789abcdef0123",
        "REDIS_URL": redis_url or sessions.url,
        "QUEUE_REDIS_URL": queue.url if redis_url is None or queue_on_own_redis else redis_url,
        "DATABASE_URL": database_url or default_database(workdir),
        "OIDC_ISSUER": provider_url,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        **GENEROUS_RATE_LIMITS,
        **(settings or {}),
    }
    env = {**os.environ, **{name: env_value(value) for name, value in typed.items()}}
    env |= {"GATEHOUSE_TEST_LOGS": str(logs), **(extra_env or {})}
    stack = Stack(
        workdir=workdir,
        settings=typed,
        env=env,
        sessions=sessions,
        queue=queue,
        provider_url=provider_url,
        provider=certified,
        processes=processes,
        redis_client=redis_client,
    )
    try:
        if not is_migrated(stack.database_url):
            stack.flask("db", "upgrade")
        for index in range(workers):
            stack.start_worker(f"worker{index}")
        for index, port in enumerate(web_ports):
            stack.start_web(f"web{index}", workers=web_workers, port=port)
        if workers and wait_for_workers:
            stack.wait_for_idle_workers(workers)
    except BaseException:
        stack.stop()
        raise
    return stack


def start_certified(logs: Path, web_ports: list[int], access_token_ttl: int) -> CertifiedProvider:
    """The certified provider, with the web processes' callback, post-logout and back-channel URLs registered."""
    with open(logs / "provider.log", "ab") as log:
        return start_certified_provider(
            free_port(),
            redirect_uris=[f"http://127.0.0.1:{port}/auth/callback" for port in web_ports],
            post_logout_redirect_uris=[f"http://127.0.0.1:{port}/login?reason=signed_out" for port in web_ports],
            log=log,
            access_token_ttl=access_token_ttl,
            backchannel_logout_uri=(f"http://127.0.0.1:{web_ports[0]}/auth/backchannel-logout" if web_ports else None),
        )
