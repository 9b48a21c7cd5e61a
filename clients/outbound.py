"""Outbound HTTP: sessions that keep no per-user state, and calls capped in size and total time.

`stateless_session()` keeps no cookies and reads no ~/.netrc, so nothing of one
user's call can ride on another's.

requests' timeouts apply to each socket read, so a peer that trickles one byte
every few seconds (or sends a huge body) can pin a thread or fill memory for as
long as it likes. `BoundedAdapter` reads every body itself, up to `max_bytes`,
and a watchdog shuts the connection's socket when `total_seconds` have passed,
whatever phase the call is in (connecting, headers, body).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import Any

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

import metrics

CHUNK_BYTES = 16 * 1024
_in_flight = threading.local()


class NoCookies(DefaultCookiePolicy):
    """A cookie policy that keeps nothing: one user's API cookies must never ride on another user's call."""

    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        """Refuse every cookie a response sets."""
        return False

    def return_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        """Send none (there are none to send)."""
        return False


class NoNetrc(requests.auth.AuthBase):
    """Session-wide "auth" that changes nothing: its presence stops requests from reading ~/.netrc."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Leave the request's own headers (the caller's bearer token) alone."""
        return request


def stateless_session() -> requests.Session:
    """A connection pool that carries nothing from one call to the next: no cookies, no stray credentials.

    The environment still counts for proxies and CA bundles (REQUESTS_CA_BUNDLE), which
    deployments need; only ~/.netrc, which could put one set of credentials on every
    user's call, is kept out.
    """
    http = requests.Session()
    http.cookies.set_policy(NoCookies())
    http.auth = NoNetrc()
    return http


class ResponseTooLarge(requests.RequestException):
    """The answer was longer than the call allows."""


class CallTooSlow(requests.Timeout):
    """The whole call took longer than it may."""


class _Tracked:
    """Remembers, for the calling thread, the socket its current request was sent on (for the watchdog).

    The socket itself, not the connection: http.client drops the connection's reference
    to it once a response that closes the connection has begun, while the body is
    still being read from it.
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = super().request(*args, **kwargs)  # type: ignore[misc]
        sockets = getattr(_in_flight, "sockets", None)
        sock = getattr(self, "sock", None)
        if sockets is not None and sock is not None:
            sockets.append(sock)
        return result


class _TrackedHTTPConnection(_Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def _cut(sockets: list[socket.socket], fired: threading.Event) -> None:
    """The watchdog: end the socket under a call that ran out of time, so its blocked read returns."""
    fired.set()
    for sock in sockets:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


class BoundedAdapter(HTTPAdapter):
    """A transport adapter whose calls read at most `max_bytes` and last at most `total_seconds`.

    With a `target` ("provider", "api"), each call's duration is observed in the metrics.
    """

    def __init__(self, *, max_bytes: int, total_seconds: float, target: str | None = None, **kwargs: Any):
        self.max_bytes = max_bytes
        self.total_seconds = total_seconds
        self.target = target
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with connections the watchdog can find."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send, then read the body here within both limits; raises ResponseTooLarge or CallTooSlow."""
        started = time.monotonic()
        answered = False
        try:
            response = self._send_bounded(request, **kwargs)
            answered = True
            return response
        finally:
            if self.target is not None:
                metrics.outbound_call(self.target, time.monotonic() - started, answered=answered)

    def _send_bounded(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["stream"] = True
        sockets: list[socket.socket] = []
        _in_flight.sockets = sockets
        deadline = time.monotonic() + self.total_seconds
        fired = threading.Event()
        watchdog = threading.Timer(self.total_seconds, _cut, args=(sockets, fired))
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                response = super().send(request, **kwargs)
            except requests.ConnectionError as error:
                if fired.is_set() or time.monotonic() >= deadline:
                    raise CallTooSlow(f"no answer within {self.total_seconds}s") from error
                raise
            self._read_body(response, deadline)
            if fired.is_set():
                # Cut mid-answer: whatever was read so far is not the answer.
                raise CallTooSlow(f"the answer took over {self.total_seconds}s")
            return response
        finally:
            watchdog.cancel()
            _in_flight.sockets = None

    def _read_body(self, response: requests.Response, deadline: float) -> None:
        """Read the whole body into the response, refusing more than max_bytes or past the deadline."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise ResponseTooLarge(f"the answer declares {declared} bytes (at most {self.max_bytes})")
        body = bytearray()
        try:
            for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
                body += chunk
                if len(body) > self.max_bytes:
                    raise ResponseTooLarge(f"the answer is over {self.max_bytes} bytes")
                if time.monotonic() >= deadline:
                    raise CallTooSlow(f"the answer took over {self.total_seconds}s")
        except (ResponseTooLarge, CallTooSlow):
            response.close()
            raise
        except Exception as error:
            response.close()
            if time.monotonic() >= deadline:
                raise CallTooSlow(f"the answer took over {self.total_seconds}s") from error
            raise requests.ConnectionError(f"the answer could not be read: {type(error).__name__}") from error
        response._content = bytes(body)
        response._content_consumed = True
        response.close()


def bound(
    session: requests.Session, *, max_bytes: int, total_seconds: float, target: str | None = None
) -> requests.Session:
    """Make every call of `session` bounded in size and total time (and timed in the metrics, with a `target`)."""
    adapter = BoundedAdapter(max_bytes=max_bytes, total_seconds=total_seconds, target=target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
