"""The rate limiter's storage: `limits`' Redis storage on the app's own session-store client.

Flask-Limiter builds its storage from a URI; its own Redis storages would each open a client
of their own (and the Cluster one connects as it is built). This one, `gatehouse+redis://`,
takes the client the app already has, so the limits count on the same Redis as the sessions,
with the same short timeouts, whether that is one server, a Sentinel-watched primary or a
Cluster (each limit is one key, so one slot).
"""

from __future__ import annotations

from typing import Any

from limits.storage import RedisStorage, Storage


class AppClientStorage(RedisStorage):
    """`limits`' Redis storage, running on a client it is given (storage option `client`)."""

    # limits registers storages by this class attribute (its base declares it a plain list).
    STORAGE_SCHEME = ["gatehouse+redis"]  # noqa: RUF012

    def __init__(
        self,
        uri: str,
        client: Any = None,
        key_prefix: str = RedisStorage.PREFIX,
        wrap_exceptions: bool = False,
        **options: float | str | bool,
    ) -> None:
        if client is None:
            raise ValueError("gatehouse+redis:// needs the app's Redis client (storage option `client`)")
        # RedisStorage's own __init__ would build a client from the URI: the base class's instead.
        Storage.__init__(self, uri, wrap_exceptions=wrap_exceptions, **options)
        self.key_prefix = key_prefix
        self.target_server = "redis"
        self.dependency = self.dependencies["redis"].module
        self.storage = client
        self.initialize_storage(uri)
