"""Real HTTP servers in background threads: the hostile provider, a recorder, the app under test."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.support.ports import free_port

# Request threads of the app under test carry this name, so the log capture can
# tell the app's records from those of the test's own HTTP client and the provider.
APP_THREAD_NAME = "gatehouse-request"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class QuietHandler(WSGIRequestHandler):
    """No access log lines from these test servers (production runs gunicorn, see gunicorn.conf.py)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Stay silent: the tests read the app's own logs, not the test server's."""


class ThreadedServer:
    """A threaded werkzeug server on a free 127.0.0.1 port, stopped by `stop()`."""

    def __init__(self, app: WsgiApp, *, ssl_context: ssl.SSLContext | None = None):
        self.port = free_port()
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=QuietHandler, ssl_context=ssl_context
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"server-{self.port}", daemon=True)

    def start(self) -> ThreadedServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class SwappableApp:
    """A WSGI app that forwards to whichever app a test mounted, so one server serves them all."""

    def __init__(self) -> None:
        self.app: WsgiApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Forward the request to the mounted app, in a thread named for it (log capture filters on it)."""
        threading.current_thread().name = APP_THREAD_NAME
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app mounted"]
        return self.app(environ, start_response)
