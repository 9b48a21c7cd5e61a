"""Forwarded headers (X-Forwarded-For, -Proto, -Host, -Port), believed only from the proxies FORWARDED_ALLOW_IPS names.

Werkzeug's ProxyFix believes whatever X-Forwarded-* a request carries, whoever sent it: with
PROXY_FIX_HOPS set, a client talking to gunicorn directly could name any address (and so reach
/metrics, dodge the sign-in rate limit, and put a forged address on the devices page, in the
audit trail and in the access log). Here ProxyFix applies only when the connecting peer is one
of the trusted proxies, the same rule and the same setting gunicorn uses for X-Forwarded-Proto.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.proxy_fix import ProxyFix

from metrics.exposition import address_allowed

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# FORWARDED_ALLOW_IPS=* believes every peer, as gunicorn's own "*" does.
ANY_PEER = "*"


class TrustedProxyFix:
    """ProxyFix for requests whose peer is a trusted proxy; every other request keeps its own addresses."""

    def __init__(self, app: WSGIApplication, *, hops: int, trusted: tuple[IpNetwork, ...] | str):
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
        self.trusted = trusted

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Believe the forwarded headers only if the peer is a trusted proxy."""
        if self.believes(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)

    def believes(self, peer: str | None) -> bool:
        """True when `peer` (the connecting address) is a trusted proxy."""
        if isinstance(self.trusted, str):
            return self.trusted == ANY_PEER
        return address_allowed(peer, self.trusted)
