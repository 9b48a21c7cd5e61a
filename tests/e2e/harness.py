"""Real processes for the end-to-end suite: the certified provider, gunicorn with gunicorn.conf.py, a stack.

The stack is the one production runs: Redis, `oidc-provider` (node), `flask --app app worker`
processes and gunicorn web processes started with the repository's gunicorn.conf.py, on SQLite
or PostgreSQL, each on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

from devstack.processes import free_port, start_redis, stop, wait_for_port
from tests.support.polling import wait_until
from tests.support.stack import CLIENT_ID, CLIENT_SECRET, ROOT, Stack

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
ARTIFACTS = ROOT / "test-artifacts"


def node_binary() -> str:
    """The `node` executable (scripts/system-packages.sh installs it when missing)."""
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node not found: run scripts/system-packages.sh (or `make test`, which does)")
    return found


def ensure_provider_installed() -> None:
    """Install the provider's pinned npm packages (`npm ci`) unless the lock file's set is in place."""
    installed = PROVIDER_DIR / "node_modules" / ".package-lock.json"
    lock = PROVIDER_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found: run scripts/system-packages.sh (or `make test`, which does)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROVIDER_DIR, check=True, timeout=300
    )


@dataclass
class CertifiedProvider:
    """A running `oidc-provider` and its test-only admin routes."""

    url: str
    process: subprocess.Popen
    admin_secret: str

    def _admin(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.url}/__test/{path}",
            json=payload,
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def account(self, sub: str) -> dict[str, Any]:
        """What the provider holds and did for `sub`: live tokens, grants, refreshes granted, refresh
        token reuse it refused (`refresh_reuse_detected`), back-channel logout tokens it sent
        (`backchannel_logouts`: [{sid, ok, error}])."""
        return self._admin("GET", f"accounts/{sub}")

    def revoke(self, sub: str) -> dict[str, Any]:
        """Revoke everything the provider issued to `sub` (grants, refresh and access tokens)."""
        return self._admin("POST", f"accounts/{sub}/revoke")

    def set_access_token_ttl(self, sub: str, seconds: int) -> dict[str, Any]:
        """Make access tokens issued to `sub` from now on live `seconds` seconds."""
        return self._admin("PUT", f"accounts/{sub}/access-token-ttl", {"seconds": seconds})

    def sessions(self, sub: str) -> list[dict[str, Any]]:
        """`sub`'s live provider sessions: [{sid (the app client's), login_ts, session_id (the `_session` cookie)}]."""
        return self._admin("GET", f"accounts/{sub}/sessions")

    def end_sessions(self, sub: str) -> dict[str, Any]:
        """End every provider session of `sub` as its sign-out page would, sending back-channel logout
        tokens; returns {"ended": N, **account(sub)}."""
        return self._admin("POST", f"accounts/{sub}/end-sessions")


def start_certified_provider(
    port: int,
    *,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    log: BinaryIO,
    access_token_ttl: int = 3600,
    backchannel_logout_uri: str | None = None,
) -> CertifiedProvider:
    """Start tests/e2e/provider/provider.mjs on 127.0.0.1:port with the app's client registered."""
    ensure_provider_installed()
    admin_secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URIS": ",".join(redirect_uris),
        "POST_LOGOUT_REDIRECT_URIS": ",".join(post_logout_redirect_uris),
        "ACCESS_TOKEN_TTL": str(access_token_ttl),
        "ADMIN_SECRET": admin_secret,
        "BACKCHANNEL_LOGOUT_URI": backchannel_logout_uri or "",
        "NODE_ENV": "test",
    }
    process = subprocess.Popen(
        [node_binary(), str(PROVIDER_DIR / "provider.mjs")],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process=process, timeout=30)
    except BaseException:
        stop([process])
        raise
    return CertifiedProvider(url=f"http://127.0.0.1:{port}", process=process, admin_secret=admin_secret)


def start_gunicorn(stack: Stack, name: str, port: int, *, workers: int = 2, threads: int = 4) -> str:
    """Serve `app:create_app()` with the repository's gunicorn.conf.py; returns the base URL once ready."""
    env = {
        **stack.env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    with stack.log_file(name) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack.processes[name] = process
    url = f"http://127.0.0.1:{port}"
    wait_for_port(port, process=process, timeout=30)
    wait_until(lambda: _ready(url), timeout=30, what=f"{name} to become ready")
    stack.web_urls.append(url)
    return url


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@dataclass
class E2EStack:
    """A running deployment: the shared Stack handles plus the certified provider."""

    stack: Stack
    provider: CertifiedProvider
    database_url: str

    @property
    def web_url(self) -> str:
        """The first web process."""
        return self.stack.web_urls[0]

    @property
    def web_urls(self) -> list[str]:
        """Every web process, in start order."""
        return self.stack.web_urls

    def users(self) -> list[dict[str, Any]]:
        """`flask --app app users list --json`, parsed: what the database holds."""
        output = self.stack.flask("users", "list", "--json").stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def user(self, subject: str) -> dict[str, Any] | None:
        """The persisted row of one subject, or None."""
        return next((row for row in self.users() if row["subject"] == subject), None)

    def stop(self) -> None:
        """Stop every process (web first, Redis last)."""
        self.stack.stop()


def start_e2e_stack(
    workdir: Path,
    *,
    database_url: str,
    web: int = 1,
    workers: int = 1,
    web_workers: int = 2,
    access_token_ttl: int = 3600,
    extra_env: Mapping[str, str] | None = None,
) -> E2EStack:
    """Start Redis and the certified provider, migrate the database, then workers and gunicorn web processes."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    redis_port, provider_port = free_port(), free_port()
    # The provider registers the exact callback and post-logout URLs, so web ports are chosen first.
    web_ports = [free_port() for _ in range(web)]
    processes: dict[str, subprocess.Popen] = {"redis": start_redis(redis_port, data_dir=workdir)}
    try:
        with open(logs / "provider.log", "ab") as log:
            provider = start_certified_provider(
                provider_port,
                redirect_uris=[f"http://127.0.0.1:{port}/auth/callback" for port in web_ports],
                post_logout_redirect_uris=[f"http://127.0.0.1:{port}/login?reason=signed_out" for port in web_ports],
                log=log,
                access_token_ttl=access_token_ttl,
                backchannel_logout_uri=(
                    f"http://127.0.0.1:{web_ports[0]}/auth/backchannel-logout" if web_ports else None
                ),
            )
    except BaseException:
        stop(list(processes.values()))
        raise
    processes["provider"] = provider.process
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "e2e-tests-secret-key-0123456789abcdef0123",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATABASE_URL": database_url,
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "GATEHOUSE_TEST_LOGS": str(logs),
        **(extra_env or {}),
    }
    stack = Stack(env=env, redis_port=redis_port, provider_url=provider.url, processes=processes)
    try:
        stack.flask("db", "upgrade")
        for index in range(workers):
            stack.start_worker(f"worker{index}")
        for index, port in enumerate(web_ports):
            start_gunicorn(stack, f"web{index}", port, workers=web_workers)
    except BaseException:
        stack.stop()
        raise
    return E2EStack(stack=stack, provider=provider, database_url=database_url)
