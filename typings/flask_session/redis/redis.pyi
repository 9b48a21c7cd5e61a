from flask import Flask
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from redis import Redis

class RedisSession(ServerSideSession): ...

class RedisSessionInterface(ServerSideSessionInterface):
    session_class: type[ServerSideSession]
    client: Redis
    def __init__(
        self,
        app: Flask,
        client: Redis | None = ...,
        key_prefix: str = ...,
        use_signer: bool = ...,
        permanent: bool = ...,
        sid_length: int = ...,
        serialization_format: str = ...,
    ) -> None: ...
