"""A whole Gatehouse deployment in child processes: Redis, provider, worker(s), web app(s).

Every process is real (redis-server, oidc-provider-mock, `flask --app app worker`,
gunicorn serving `app:create_app()`) and listens on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests
from redis import Redis

from devstack.processes import free_port, start_mock_provider, start_redis, stop, wait_for_port
from tests.support.session_records import read_session

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "gatehouse-test"
CLIENT_SECRET = "gatehouse-test-secret"


@dataclass
class Stack:
    """Handles on the running processes and the environment they share."""

    env: dict[str, str]
    redis_port: int
    provider_url: str
    web_urls: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    workdir: Path | None = None
    redis_appendonly: bool = False

    @property
    def web_url(self) -> str:
        """The first web process."""
        return self.web_urls[0]

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `flask --app app ARGS` with the stack's environment."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

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

    def start_web(self, name: str = "web", workers: int = 2) -> str:
        """Start gunicorn serving `app:create_app()`; returns its base URL."""
        port = free_port()
        with self.log_file(name) as log:
            gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
            # Every gunicorn would otherwise share one control socket under ~/.gunicorn.
            gunicorn.append("--no-control-socket")
            process = subprocess.Popen(
                [*gunicorn, "--threads", "4", "--access-logfile", "-", "app:create_app()"],
                cwd=ROOT,
                env=self.env,
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

    def redis(self) -> Redis:
        """A client of the stack's Redis (sessions and queues), as the app sees it."""
        return Redis(port=self.redis_port, socket_timeout=5)

    def session_record(self, sid: str) -> dict[str, Any] | None:
        """The stored session `sid`, composed (app data, created_at, user, profile, tokens), or None."""
        with self.redis() as client:
            return read_session(client, sid)

    def users(self) -> list[dict[str, Any]]:
        """The persisted users, as `flask --app app users list --json` prints them."""
        output = self.flask("users", "list", "--json").stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def stop_process(self, name: str) -> None:
        """Stop one process of the stack (SIGTERM, then SIGKILL) and forget it."""
        process = self.processes.pop(name)
        stop([process])

    def stop_redis(self) -> None:
        """Stop the stack's Redis (its port number is kept for `start_redis`)."""
        self.stop_process("redis")

    def start_redis(self) -> None:
        """Start Redis again on the same port and data directory."""
        process = start_redis(self.redis_port, data_dir=self.workdir, appendonly=self.redis_appendonly)
        # First again, so `stop` still stops Redis last.
        self.processes = {"redis": process, **self.processes}

    def log_file(self, name: str) -> BinaryIO:
        """The log file of one process, under the stack's logs folder."""
        return open(Path(self.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log", "ab")

    def stop(self) -> None:
        """Stop every process of the stack (web first, Redis last)."""
        # Redis only once the others have exited: a worker still shutting down needs it
        # to deregister, and would die with a ConnectionError traceback otherwise.
        stop([process for name, process in reversed(self.processes.items()) if name != "redis"])
        stop([process for name, process in self.processes.items() if name == "redis"])
        self.processes.clear()


def wait_for_app(url: str, process: subprocess.Popen, *, timeout: float = 60.0) -> None:
    """Poll /healthz until a gunicorn worker answers: the port opens before any worker has loaded the app."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before answering")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url}/healthz did not answer 200 within {timeout}s")
        time.sleep(0.05)


def start_stack(
    workdir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    token_max_age: int = 3600,
    web: int = 1,
    workers: int = 1,
    redis_appendonly: bool = False,
) -> Stack:
    """Start Redis, the provider, migrate a fresh SQLite database, then workers and web processes.

    `redis_appendonly` keeps Redis data (sessions, queues) across `stop_redis`/`start_redis`.
    """
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    redis_port, provider_port = free_port(), free_port()
    processes = {
        "redis": start_redis(redis_port, data_dir=workdir, appendonly=redis_appendonly),
        "provider": start_mock_provider(provider_port, token_max_age=token_max_age),
    }
    provider_url = f"http://127.0.0.1:{provider_port}"
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "integration-tests-secret-key-0123456789abcdef",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
        "OIDC_ISSUER": provider_url,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "GATEHOUSE_TEST_LOGS": str(logs),
        # Every test browser is 127.0.0.1 and the suite signs in hundreds of times a minute; the
        # limits themselves are tested in tests/security/test_rate_limits.py.
        "LOGIN_RATE_LIMIT": "100000 per minute",
        "CALLBACK_RATE_LIMIT": "100000 per minute",
        **(extra_env or {}),
    }
    stack = Stack(
        env=env,
        redis_port=redis_port,
        provider_url=provider_url,
        processes=processes,
        workdir=workdir,
        redis_appendonly=redis_appendonly,
    )
    try:
        stack.flask("db", "upgrade")
        for index in range(workers):
            stack.start_worker(f"worker{index}")
        for index in range(web):
            stack.start_web(f"web{index}")
    except BaseException:
        stack.stop()
        raise
    return stack
