"""App-scoped Redis clients, built from settings in the factory.

They live in `app.extensions` and are reached through the tiny accessors below,
so nothing is connected at import and every process builds its own.
"""

from __future__ import annotations

from flask import Flask, current_app
from redis import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_SESSION_REDIS = "gatehouse.session_redis"
_QUEUE_REDIS = "gatehouse.queue_redis"


def make_redis(url: str, *, socket_timeout: float | None, max_connections: int) -> Redis:
    """Build a Redis client that fails fast instead of stalling requests.

    redis-py retries failed commands with backoff by default, which turns a Redis
    outage into multi-second hangs; requests should fail within a second and show
    a 503 instead, so retries are off and socket timeouts are short. The pool is
    bounded and blocks briefly for a free connection rather than opening more.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def init_connections(app: Flask) -> None:
    """Build the Redis clients for this app (no connection is opened yet)."""
    timeout = app.config["REDIS_SOCKET_TIMEOUT"]
    size = app.config["REDIS_MAX_CONNECTIONS"]
    sessions_client = make_redis(app.config["REDIS_URL"], socket_timeout=timeout, max_connections=size)
    if app.config["QUEUE_REDIS_URL"] == app.config["REDIS_URL"]:
        queue_client = sessions_client
    else:
        queue_client = make_redis(app.config["QUEUE_REDIS_URL"], socket_timeout=timeout, max_connections=size)
    app.extensions[_SESSION_REDIS] = sessions_client
    app.extensions[_QUEUE_REDIS] = queue_client


def session_redis(app: Flask | None = None) -> Redis:
    """The Redis client that holds sessions."""
    client: Redis = (app or current_app).extensions[_SESSION_REDIS]
    return client


def queue_redis(app: Flask | None = None) -> Redis:
    """The Redis client that holds the job queues."""
    client: Redis = (app or current_app).extensions[_QUEUE_REDIS]
    return client
