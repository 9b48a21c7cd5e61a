"""What a Redis URL names: one server, a Sentinel-watched primary, or a Cluster.

The forms are those Flask-Limiter's storage (the `limits` package) understands, plus TLS:

    redis://[user:password@]host:port[/db]      rediss://…      unix:///path/to/socket[?db=N]
    redis+sentinel://[user:password@]host:port[,host:port…]/SERVICE[/db]      rediss+sentinel://…
    redis+cluster://[user:password@]host:port[,host:port…]                    rediss+cluster://…

For Sentinel, the user and password are the data nodes' (Sentinel's own password, if it has
one, is the REDIS_SENTINEL_PASSWORD setting); SERVICE is the primary's name as Sentinel knows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

Kind = Literal["standalone", "sentinel", "cluster"]
SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL."""

    kind: Kind
    url: str
    tls: bool
    # Sentinel and Cluster: the addresses to start from (Sentinels, or any cluster nodes).
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """The target a Redis URL names; ValueError saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {parts.scheme + '://' if parts.scheme else 'none'}")
    kind, tls = SCHEMES[parts.scheme]
    if kind == "standalone":
        return RedisTarget(kind, url, tls)
    credentials, _, addresses = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    hosts = tuple(_address(item) for item in addresses.split(","))
    path = [segment for segment in parts.path.split("/") if segment]
    service, db = "", 0
    if kind == "sentinel":
        if not path or len(path) > 2:
            raise ValueError("a Sentinel URL ends with /SERVICE or /SERVICE/DB")
        service = unquote(path[0])
        db = _database(path[1]) if len(path) == 2 else 0
    elif path:
        raise ValueError("a Cluster URL has no path (a cluster has database 0 only)")
    return RedisTarget(
        kind,
        url,
        tls,
        hosts=hosts,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def _address(item: str) -> tuple[str, int]:
    host, separator, port = item.strip().rpartition(":")
    if not separator or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item.strip() or 'an empty address'!r} is not host:port")
    return host.strip("[]"), int(port)


def _database(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
        raise ValueError(f"the database {raw!r} is not a number")
    return int(raw)
