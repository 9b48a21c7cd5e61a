"""LOG_FORMAT=json on the real stack: gunicorn, the app and the RQ worker write one JSON object per line,
and a sign-in's request id follows it from the web process into the worker's lines for its job."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

TIMEOUT = 10


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real gunicorn (with gunicorn.conf.py), worker, Redis and provider, all with LOG_FORMAT=json."""
    running = start_stack(tmp_path_factory.mktemp("json-logs"), extra_env={"LOG_FORMAT": "json"})
    try:
        yield running
    finally:
        running.stop()


def log_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every line a process of the stack wrote so far, each parsed as JSON (a line that is not JSON fails)."""
    text = (Path(stack.env["GATEHOUSE_TEST_LOGS"]) / f"{name}.log").read_text(errors="replace")
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pytest.fail(f"{name} wrote a line that is not JSON: {line!r}")
    return lines


def sign_in(stack: Stack, subject: str, request_id: str | None = None) -> requests.Response:
    """A real sign-in through the provider's page; returns the callback's answer (not followed)."""
    with requests.Session() as browser:
        start = browser.get(f"{stack.web_url}/login", allow_redirects=False, timeout=TIMEOUT)
        consent = browser.post(start.headers["Location"], data={"sub": subject}, allow_redirects=False, timeout=TIMEOUT)
        headers = {"X-Request-ID": request_id} if request_id else {}
        callback = browser.get(consent.headers["Location"], headers=headers, allow_redirects=False, timeout=TIMEOUT)
    assert callback.status_code == 302, callback.text
    assert callback.headers["Location"] == "/"
    return callback


def finished_line(stack: Stack, request_id: str) -> dict[str, Any] | None:
    """The worker's line for the persistence job queued by the request `request_id`, once it is written."""
    for line in log_lines(stack, "worker0"):
        if line["message"].startswith("persist_user finished") and line["request_id"] == request_id:
            return line
    return None


@pytest.mark.parametrize("sent", [None, "caller-chosen.id_1"])
def test_a_sign_in_s_request_id_reaches_the_worker_s_lines(json_stack: Stack, sent: str | None) -> None:
    subject = f"json-{uuid.uuid4().hex[:10]}"
    callback = sign_in(json_stack, subject, request_id=sent)
    request_id = callback.headers["X-Request-ID"]
    if sent:
        assert request_id == sent
    else:
        assert len(request_id) == 32

    line = wait_until(lambda: finished_line(json_stack, request_id), timeout=30, what="the worker's persist line")
    assert line["level"] == "INFO"
    # Alone, a job logs its end itself (jobs.queues); in a batch (the sign-in's audit event may join it)
    # the worker logs it for each job (jobs.worker).
    assert line["logger"] in ("jobs.queues", "jobs.worker")
    assert set(line) >= {"time", "level", "logger", "message", "request_id"}

    web = log_lines(json_stack, "web0")
    access = [entry for entry in web if entry["logger"] == "gunicorn.access" and "/auth/callback" in entry["message"]]
    assert [entry["request_id"] for entry in access].count(request_id) == 1
    assert any(entry["logger"] == "gunicorn.error" for entry in web), "gunicorn's own lines are JSON too"
    worker = log_lines(json_stack, "worker0")
    assert any(entry["logger"].startswith("rq.") for entry in worker), "RQ's lines are JSON too"
    # No personal data and no codes in any line: the callback's query string never reaches the logs.
    everything = json.dumps(web + worker)
    assert "code=" not in everything
    assert callback.cookies.get("gatehouse_session") is None or callback.cookies["gatehouse_session"] not in everything


def raw_get(url: str, header_value: bytes) -> tuple[int, dict[str, str]]:
    """GET /healthz with exactly these bytes as the X-Request-ID value (no client library to tidy them)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    assert host and port
    request = b"GET /healthz HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n"
    request += b"X-Request-ID: " + header_value + b"\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, port), timeout=TIMEOUT) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.split(": ", 1) for line in head[1:])
    return status, headers


@pytest.mark.parametrize(
    "hostile",
    [b"x" * 65, b"x" * 8000, "évènement".encode(), b"\x1b[31mred", b"abc\rX-Injected: 1", b"a b", b"../../etc"],
    ids=["oversized", "huge", "non-ASCII", "terminal escape", "bare CR injection", "space", "slashes"],
)
def test_an_unsafe_request_id_is_never_echoed_or_logged(json_stack: Stack, hostile: bytes) -> None:
    status, headers = raw_get(json_stack.web_url, hostile)
    # gunicorn may refuse the request itself (400); if it reaches the app, the app makes its own id.
    assert status in (200, 400)
    assert "X-Injected" not in headers
    if status == 200:
        assert len(headers["X-Request-ID"]) == 32 and headers["X-Request-ID"].encode() != hostile
    logged = {entry["request_id"] for entry in log_lines(json_stack, "web0")}
    assert hostile.decode("latin-1") not in logged
