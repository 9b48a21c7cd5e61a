"""A small, cheap browser for the sign-in benchmarks: keep-alive HTTP/1.1, cookies per server, no redirects followed.

bench/signins.py drives whole sign-ins with it. It is http.client with a cookie jar and
nothing else, because the load generator shares the machine's two cores with the servers it measures:
`requests` would spend several times more CPU per request in the client.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

TIMEOUT = 30


@dataclass
class Answer:
    """One response: status, the Location header (or ""), and the body."""

    status: int
    location: str
    body: bytes


@dataclass
class Browser:
    """One person's browser: a keep-alive connection and a cookie jar per server (host:port)."""

    user_agent: str = "gatehouse-bench"
    connections: dict[str, http.client.HTTPConnection] = field(default_factory=dict)
    jars: dict[str, dict[str, str]] = field(default_factory=dict)

    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> Answer:
        """Send one request (a form posted urlencoded), cookies sent and kept; a redirect is returned, not followed."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        jar = self.jars.setdefault(parts.netloc, {})
        headers = {"User-Agent": self.user_agent, "Accept": "text/html"}
        if jar:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = self._send(parts.netloc, method, target, body, headers)
        content = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                keep_cookie(jar, value)
        if response.will_close:
            self.connections.pop(parts.netloc).close()
        return Answer(response.status, response.getheader("Location", ""), content)

    def get(self, url: str) -> Answer:
        """GET `url`."""
        return self.request("GET", url)

    def _send(
        self, netloc: str, method: str, target: str, body: str | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        # A kept-alive connection the server closed while idle fails at once: send again on a new one.
        for attempt in (1, 2):
            reused = netloc in self.connections
            connection = self.connections.get(netloc) or http.client.HTTPConnection(netloc, timeout=TIMEOUT)
            self.connections[netloc] = connection
            try:
                connection.request(method, target, body=body, headers=headers)
                return connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                del self.connections[netloc]
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def forget_cookies(self) -> None:
        """A new browser profile: no cookie kept anywhere (connections stay open)."""
        self.jars.clear()

    def close(self) -> None:
        """Close every connection."""
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()


def keep_cookie(jar: dict[str, str], set_cookie: str) -> None:
    """Store (or, for an expired or emptied one, drop) the cookie one Set-Cookie header sets; attributes ignored."""
    pair, _, attributes = set_cookie.partition(";")
    name, _, value = pair.strip().partition("=")
    lowered = attributes.lower()
    if not value or "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
        jar.pop(name, None)
    else:
        jar[name] = value


def sign_in(browser: Browser, base_url: str, subject: str, next_path: str = "/") -> Answer:
    """/login -> the mock provider's form (POST sub, as tests/support/browserless.py does) -> the callback.

    Returns the callback's answer (a redirect to `next_path` when the sign-in succeeded); raises otherwise.
    """
    start = browser.get(f"{base_url}/login?{urlencode({'next': next_path})}")
    if start.status != 302:
        raise RuntimeError(f"/login answered {start.status}: {start.body[:200]!r}")
    consent = browser.request("POST", start.location, form={"sub": subject})
    if consent.status != 302:
        raise RuntimeError(f"the provider's form answered {consent.status}: {consent.body[:200]!r}")
    done = browser.get(consent.location)
    if done.status not in (302, 303) or urlsplit(done.location).path != next_path:
        raise RuntimeError(f"the callback answered {done.status} to {done.location!r}: {done.body[:200]!r}")
    return done
