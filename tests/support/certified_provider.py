"""The certified OpenID provider (`oidc-provider`, node) that the end-to-end suite signs in with.

tests/e2e/provider/provider.mjs registers the app's client with the exact callback and post-logout
URLs, and adds test-only admin routes (revoke, token lifetimes, provider sessions, back-channel logout).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

from devstack.processes import stop, wait_for_port

# The client the app is registered as, at every provider the tests start (unless a test names another).
CLIENT_ID = "gatehouse-test"
CLIENT_SECRET = "gatehouse-test-secret"

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "e2e" / "provider"


def node_binary() -> str:
    """The `node` executable (scripts/system-packages.sh installs it when missing)."""
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node not found: run scripts/system-packages.sh (or `make test`, which does)")
    return found


def _provider_installed() -> bool:
    installed = PROVIDER_DIR / "node_modules" / ".package-lock.json"
    lock = PROVIDER_DIR / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def ensure_provider_installed() -> None:
    """Install the provider's pinned npm packages (`npm ci`) unless the lock file's set is in place.

    pytest-xdist workers may all start a provider at once: one installs, under an exclusive lock, while the
    others wait for it (`npm ci` first deletes node_modules, so a second one would pull it from under a
    provider that is starting)."""
    if _provider_installed():
        return
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found: run scripts/system-packages.sh (or `make test`, which does)")
    with open(PROVIDER_DIR / ".npm-ci.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _provider_installed():
            return  # another worker installed it while this one waited
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
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
) -> CertifiedProvider:
    """Start tests/e2e/provider/provider.mjs on 127.0.0.1:port with the app's client registered.

    Its issuer is http://127.0.0.1:port; several can run at once, each on its own port (and with its own
    `client_id`, as one app is registered at several providers).
    """
    ensure_provider_installed()
    admin_secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": client_secret,
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
