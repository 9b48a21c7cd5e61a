from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

class ServerSideSession(CallbackDict[str, Any], SessionMixin):
    sid: str
    modified: bool
    accessed: bool
    def __init__(
        self, initial: dict[str, Any] | None = None, sid: str | None = None, permanent: bool | None = None
    ) -> None: ...

class ServerSideSessionInterface(SessionInterface):
    session_class: type[ServerSideSession]
    ttl: bool
    app: Flask
    key_prefix: str
    use_signer: bool
    permanent: bool
    sid_length: int
    cleanup_n_requests: int | None
    def __init__(
        self,
        app: Flask,
        key_prefix: str = ...,
        use_signer: bool = ...,
        permanent: bool = ...,
        sid_length: int = ...,
        serialization_format: str = ...,
        cleanup_n_requests: int | None = ...,
    ) -> None: ...
    def regenerate(self, session: ServerSideSession) -> None: ...
    # Flask-Session narrows the session argument from Flask's SessionMixin to its own class.
    def save_session(self, app: Flask, session: ServerSideSession, response: Response) -> None: ...  # type: ignore[override]
    def open_session(self, app: Flask, request: Request) -> ServerSideSession: ...
