"""No session id, code or token in the logs of Gatehouse as deployed: gunicorn's access and error logs plus the app's.

(Every other test of this suite also greps the app's own log records, at every
level, after it ran: see conftest.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from devstack.processes import stop, wait_for_port
from tests.security.browser import Browser
from tests.security.checks import attempt_login
from tests.security.harness import base_settings
from tests.security.hostile_provider import HostileProvider
from tests.security.leaks import leaks_in_logs, secret_values
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployed:
    """A gunicorn serving the app, and the file its output goes to."""

    url: str
    log_path: Path
    process: subprocess.Popen
    worker: subprocess.Popen
    log_format: str

    def logs(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        return self.log_path.read_text(errors="replace")

    def messages(self) -> str:
        """The log lines' messages, one a line (with LOG_FORMAT=json every line must be a JSON object)."""
        if self.log_format == "text":
            return self.logs()
        return "\n".join(json.loads(line)["message"] for line in self.logs().splitlines() if line.strip())


@pytest.fixture(params=["text", "json"])
def deployed(
    provider: HostileProvider,
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Deployed]:
    """gunicorn run from the repository (so gunicorn.conf.py applies) and a worker, both logging to one file,
    once with each LOG_FORMAT."""
    redis_client.flushdb()
    port = free_port()
    settings = base_settings(redis_url, provider, tmp_path)
    env = {**os.environ, **{name: str(value) for name, value in settings.items()}, "LOG_FORMAT": request.param}
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([*flask, "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process=process, timeout=30)
        yield Deployed(f"http://127.0.0.1:{port}", log_path, process, worker, request.param)
    finally:
        stop([process, worker])


def test_logs_hold_no_session_id_code_or_token(deployed: Deployed, provider: HostileProvider) -> None:
    """A day in the life (sign-ins good and bad, refresh, edit, errors, sign-out): the logs name none of the secrets."""
    provider.behaviour.access_token_lifetime = 1
    browsers = [Browser(deployed.url), Browser(deployed.url)]
    alice, mallory = browsers
    try:
        alice.sign_in("alice", next_path="/profile")
        form = {"csrf_token": alice.csrf_token(), "display_name": "Alice", "locale": "en", "timezone": "UTC"}
        assert alice.post("/profile", data=form).status_code == 302
        assert alice.get("/dashboard").status_code == 200  # refreshes the token
        assert alice.post("/profile", data={"display_name": "no token"}).status_code == 400
        assert alice.get("/no-such-page").status_code == 404

        provider.behaviour.id_token_claims = {"nonce": "wrong"}
        assert attempt_login(mallory, "mallory").status_code == 303
        callback_url = mallory.authorize(mallory.start_login(), "mallory")
        assert mallory.callback(callback_url.replace("state=", "state=x")).status_code == 303

        assert alice.post("/logout", data={"csrf_token": alice.csrf_token()}).status_code == 302
    finally:
        for browser in browsers:
            browser.close()
    stop([deployed.process, deployed.worker])

    logs, messages = deployed.logs(), deployed.messages()
    # The capture works: gunicorn's access log and the app's warnings are there.
    assert '"GET /auth/callback HTTP/1.1" 302' in messages
    assert "sign-in failed" in messages
    # The worker's lines are in the capture too (the job ran alone or in a batch with its audit event).
    assert "Successfully completed" in messages or "jobs OK" in messages
    assert provider.token_requests("refresh_token") >= 1
    # Both as written and as decoded: JSON escaping must not hide a secret from the scan.
    assert leaks_in_logs(logs + "\n" + messages, secret_values(provider, browsers)) == []
