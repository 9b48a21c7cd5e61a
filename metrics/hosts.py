"""Let Prometheus reach `/metrics` by address while TRUSTED_HOSTS guards every other page.

With PUBLIC_URL set, Flask answers 400 to any Host but the public one. Prometheus scrapes
each web server by its address (`10.0.0.11:8000`, a pod's IP) and sends that address as
Host; it cannot send another. So for `/metrics` only, a Host that is an IP address or
`localhost` (with or without a port) is taken as the public host before Flask checks it.
The view builds no URL from the host, and the client address is still checked against
METRICS_ALLOWED_NETWORKS. Host names stay refused: a page on another site that points its
name at this server (DNS rebinding) sends that name, never an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

METRICS_PATH = "/metrics"


def is_address_host(host: str) -> bool:
    """True for "10.0.0.11", "10.0.0.11:8000", "[::1]:8000" or "localhost[:port]"; False for names."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return False
    else:
        name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        if colon and not port.isdigit():
            return False
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class ScrapeByAddress:
    """WSGI middleware: a GET of /metrics naming this server by address counts as naming its public host."""

    def __init__(self, wsgi_app: WSGIApplication, public_host: str):
        self.wsgi_app = wsgi_app
        self.public_host = public_host

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and is_address_host(environ.get("HTTP_HOST", "")):
            environ["HTTP_HOST"] = self.public_host
        return self.wsgi_app(environ, start_response)


def init_scrape_hosts(app: Flask) -> None:
    """Install ScrapeByAddress when the app checks Host headers (PUBLIC_URL set)."""
    trusted: Any = app.config.get("TRUSTED_HOSTS")
    if trusted:
        app.wsgi_app = ScrapeByAddress(app.wsgi_app, str(trusted[0]))  # type: ignore[method-assign]
