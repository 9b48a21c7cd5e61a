"""A real local downstream API (HTTP, in a thread) whose answers each test controls.

It records the bearer token of every request, can refuse chosen tokens with 401,
answer with any status, and hold requests back (to keep a web request in flight).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import free_port


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server that says nothing when a client hung up before its answer."""

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """A held request's client may give up (the app's timeout): expected, so not printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class DownstreamApi:
    """A JSON API for API_BASE_URL: `GET` answers `{"items": [...]}` unless told otherwise."""

    def __init__(self) -> None:
        self.port = free_port()
        self.entered = threading.Event()  # set when a request has arrived
        self.gate = threading.Event()  # requests wait here until it is set
        self.gate.set()
        self.tokens_seen: list[str] = []
        self.cookies_seen: list[str | None] = []
        # Extra response headers (e.g. Set-Cookie), a redirect target, or a payload built from the token.
        self.headers: dict[str, str] = {}
        self.redirect_to: str | None = None
        self.payload: Callable[[str], object] | None = None
        # Which bearer tokens get a 401, and what status everyone else gets.
        self.refuses: Callable[[str], bool] = lambda token: False
        self.status = 200
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                """Record the token, wait for the gate (30 s at most), then answer as configured."""
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                api.tokens_seen.append(token)
                api.cookies_seen.append(self.headers.get("Cookie"))
                api.entered.set()
                api.gate.wait(timeout=30)
                if api.refuses(token):
                    self.answer(401, {"error": "invalid_token"})
                elif api.redirect_to is not None:
                    self.answer(302, {}, {"Location": api.redirect_to})
                elif api.payload is not None:
                    self.answer(api.status, api.payload(token))
                else:
                    self.answer(api.status, {"items": ["held back", "from the API"]})

            def answer(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in {**api.headers, **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        self.server = QuietServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, for API_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> DownstreamApi:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def reset(self) -> None:
        """Accept every token with 200 again and forget what was seen."""
        self.refuses = lambda token: False
        self.status = 200
        self.tokens_seen.clear()
        self.cookies_seen.clear()
        self.headers = {}
        self.redirect_to = None
        self.payload = None

    def hold(self) -> None:
        """Make the next requests wait."""
        self.entered.clear()
        self.gate.clear()

    def release(self) -> None:
        """Let waiting and later requests through."""
        self.gate.set()

    def stop(self) -> None:
        """Release everyone and shut the server down."""
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
