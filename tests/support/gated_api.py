"""A downstream API whose answers the test holds back, to keep a web request in flight on purpose."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devstack.processes import free_port


class GatedApi:
    """A local JSON API (real HTTP, in a thread) that answers only while its gate is open."""

    def __init__(self) -> None:
        self.port = free_port()
        self.entered = threading.Event()  # set when a request has arrived
        self.gate = threading.Event()  # requests wait here until it is set
        self.gate.set()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                """Answer after the gate opens (or 30 s, so a failed test cannot hang the server)."""
                api.entered.set()
                api.gate.wait(timeout=30)
                body = json.dumps({"items": ["held back"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, for API_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> GatedApi:
        """Serve in a background thread."""
        self.thread.start()
        return self

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
