"""App-scoped Redis clients, built from settings in the factory.

They live in `app.extensions` and are reached through the tiny accessors below,
so nothing is connected at import and every process builds its own.

A URL may name one server, a primary that Sentinel watches, or a Cluster (redis_targets.py).
A Sentinel client asks the Sentinels which server is the primary when it connects, and again
whenever that server fails or answers READONLY (it was demoted): after a failover the next
command goes to the new primary. A Cluster client routes each command by its key's slot and
follows MOVED and ASK redirects (a live resharding) by itself. Either way scripts are reloaded
on NOSCRIPT (a new primary's script cache is empty) by redis-py's Script, which every session
script goes through.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from flask import Flask, current_app
from redis import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry
from redis.sentinel import Sentinel

from redis_targets import RedisTarget, parse_redis_url

# What a Redis that cannot be used raises: a cluster client raises RedisClusterException (not a RedisError)
# when no node answers while it re-reads the slot map.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, RedisClusterException)


class WriteNotReplicated(RedisError):
    """Redis took a write, but fewer replicas than REDIS_WAIT_REPLICAS confirmed it in time: not acknowledged.

    The write may still be on the primary; a failover could undo it, so it is not reported done.
    """


_SESSION_REDIS = "gatehouse.session_redis"
_QUEUE_REDIS = "gatehouse.queue_redis"


def make_redis(
    url: str,
    *,
    socket_timeout: float | None,
    max_connections: int,
    sentinel_password: str | None = None,
    tls_ca_file: str | None = None,
) -> Redis:
    """Build a Redis client that fails fast instead of stalling requests.

    redis-py retries failed commands with backoff by default, which turns a Redis
    outage into multi-second hangs; requests should fail within a second and show
    a 503 instead, so retries are off and socket timeouts are short. The pool is
    bounded and blocks briefly for a free connection rather than opening more.
    """
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
        **tls_options(target, tls_ca_file),
    }
    if target.kind == "sentinel":
        return sentinel_primary(target, sentinel_password, max_connections=max_connections, **options)
    if target.kind == "cluster":
        # One retry: after a failover or a moved slot the first attempt finds the old node gone, and the
        # client retries on the new one once it has read the slot map again (every script is safe to repeat).
        cluster = LazyRedisCluster(
            target, **{**options, "retry": Retry(NoBackoff(), 1)}, max_connections=max_connections
        )
        # Duck-typed: the cluster client offers every command Gatehouse sends (all keyed, one slot each).
        return cast(Redis, cluster)
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=socket_timeout, **options)
    return Redis(connection_pool=pool)


class LazyRedisCluster(RedisCluster):
    """A RedisCluster that reads the cluster's slot map on first use, not when it is built.

    RedisCluster connects to a node as it is constructed; the factory must connect nowhere
    (a cluster down at start must give 503s, not a process that cannot start). Until its first
    use the instance holds only its settings: the first attribute that is missing (any command
    needs the nodes manager) runs RedisCluster's own __init__. If no node answers then, it stays
    unstarted (the next use tries again) and raises redis' ConnectionError, a RedisError like any
    other unavailable Redis.
    """

    def __init__(self, target: RedisTarget, **options: Any):
        self.__dict__["_pending"] = {
            "startup_nodes": [ClusterNode(host, port) for host, port in target.hosts],  # type: ignore[no-untyped-call]
            "username": target.username,
            "password": target.password,
            **options,
        }
        # Reentrant: RedisCluster's own __init__ may look for attributes it has not set yet.
        self.__dict__["_starting"] = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet, that is, before RedisCluster.__init__ has run.
        starting = self.__dict__["_starting"]
        with starting:
            pending = self.__dict__.pop("_pending", None)
            if pending is not None:
                try:
                    RedisCluster.__init__(self, **pending)
                except Exception as error:
                    # No startup node answered (down, or its certificate not trusted): unstarted again, so the
                    # next use tries again, and an unavailable Redis (a 503) rather than a RedisClusterException
                    # (not a RedisError: a 500).
                    self.__dict__.clear()
                    self.__dict__.update(_pending=pending, _starting=starting)
                    if isinstance(error, RedisClusterException):
                        raise RedisConnectionError(str(error)) from error
                    raise
        if name in self.__dict__ or pending is not None:
            return getattr(self, name)
        raise AttributeError(name)

    def __del__(self) -> None:
        if "_pending" not in self.__dict__:
            super().__del__()  # type: ignore[no-untyped-call]


def tls_options(target: RedisTarget, ca_file: str | None) -> dict[str, Any]:
    """redis-py's TLS settings for a rediss… URL: certificates checked, against REDIS_TLS_CA_FILE if set.

    A one-server rediss:// URL already picks redis-py's TLS connection; Sentinel and Cluster are told.
    """
    if not target.tls:
        return {}
    chosen: dict[str, Any] = {} if target.kind == "standalone" else {"ssl": True}
    return {**chosen, "ssl_ca_certs": ca_file} if ca_file else chosen


def sentinel_primary(target: RedisTarget, sentinel_password: str | None, **options: Any) -> Redis:
    """A client of the primary Sentinel names for `target.service` (nothing is connected yet)."""
    # The Sentinels' own connections: the same timeouts, retries and TLS, and Sentinel's password if it has one
    # (without `retry` each would retry with redis-py's default backoff: seconds per unreachable Sentinel).
    keep = ("socket_timeout", "socket_connect_timeout", "retry", "ssl", "ssl_ca_certs")
    sentinel_options = {key: options[key] for key in keep if key in options}
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves Sentinel unannotated
        list(target.hosts),
        sentinel_kwargs=sentinel_options,
        username=target.username,
        password=target.password,
        db=target.db,
        **options,
    )
    client: Redis = sentinel.master_for(target.service)  # type: ignore[no-untyped-call]
    return client


def init_connections(app: Flask) -> None:
    """Build the Redis clients for this app (no connection is opened yet)."""
    timeout = app.config["REDIS_SOCKET_TIMEOUT"]
    size = app.config["REDIS_MAX_CONNECTIONS"]
    secrets = {
        "sentinel_password": app.config["REDIS_SENTINEL_PASSWORD"] or None,
        "tls_ca_file": app.config["REDIS_TLS_CA_FILE"] or None,
    }
    sessions_client = make_redis(app.config["REDIS_URL"], socket_timeout=timeout, max_connections=size, **secrets)
    if app.config["QUEUE_REDIS_URL"] == app.config["REDIS_URL"]:
        queue_client = sessions_client
    else:
        queue_client = make_redis(
            app.config["QUEUE_REDIS_URL"], socket_timeout=timeout, max_connections=size, **secrets
        )
    app.extensions[_SESSION_REDIS] = sessions_client
    app.extensions[_QUEUE_REDIS] = queue_client


def worker_redis(url: str, sentinel_password: str | None, tls_ca_file: str | None = None) -> Redis:
    """The RQ worker's own client: no read timeout, since it blocks waiting for jobs; connects within 5 s."""
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        **tls_options(target, tls_ca_file),
    }
    if target.kind == "sentinel":
        return sentinel_primary(target, sentinel_password, **options)
    return Redis.from_url(url, **options)


def session_redis(app: Flask | None = None) -> Redis:
    """The Redis client that holds sessions."""
    client: Redis = (app or current_app).extensions[_SESSION_REDIS]
    return client


def queue_redis(app: Flask | None = None) -> Redis:
    """The Redis client that holds the job queues."""
    client: Redis = (app or current_app).extensions[_QUEUE_REDIS]
    return client
