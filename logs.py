"""Log lines as text or as one JSON object per line (LOG_FORMAT), and the request id they carry.

Every web request gets a request id: the caller's `X-Request-ID` if it is short and plainly safe
(1 to 64 characters of A-Z a-z 0-9 . _ -), a new random one otherwise. The response returns it in
`X-Request-ID`, every log line written while the request runs carries it, and every job the request
queues keeps it in the job's meta (jobs/queues.py), so the worker's lines for that job carry it too.

With LOG_FORMAT=json the app's loggers (and RQ's, and Werkzeug's, which propagate to the root
logger) write one JSON object per line to stderr: time, level, logger, message, request_id, and
the traceback as `exception` when there is one. gunicorn's own loggers use `GunicornJsonLogger`
(gunicorn.conf.py selects it). Messages are the same as in text mode; what they may contain is
decided where they are written (no tokens, codes, session ids or personal data).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# Short and plain: it is echoed into a header and into every log line, so nothing that could split a
# line, a header or a JSON string, and nothing long enough to flood the logs.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)

_current_request_id: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)


def safe_request_id(value: object) -> str | None:
    """`value` if it is an acceptable request id, else None."""
    if isinstance(value, str) and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    """A fresh random request id (32 hex characters)."""
    return secrets.token_hex(16)


def current_request_id() -> str | None:
    """The request id of the request or job running now, if any."""
    return _current_request_id.get()


@contextmanager
def request_id_context(request_id: str | None) -> Iterator[None]:
    """Log lines written inside carry `request_id` (a job uses the id of the request that queued it)."""
    token = _current_request_id.set(safe_request_id(request_id))
    try:
        yield
    finally:
        _current_request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record as `record.request_id` (None outside requests and jobs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        """time (UTC, ISO 8601), level, logger, message, request_id, and exception if any."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _record_request_id(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def _record_request_id(record: logging.LogRecord) -> str | None:
    """The record's request id; gunicorn's access lines carry it as the response's X-Request-ID atom."""
    found = getattr(record, "request_id", None)
    if found is None and record.name == "gunicorn.access" and isinstance(record.args, Mapping):
        found = record.args.get("{x-request-id}o")
    return safe_request_id(found)


_HANDLER_MARK = "_gatehouse_json"


def use_json_logs(level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr as JSON lines (once per process, however many apps)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)


def init_logging(app: Flask) -> None:
    """Log at INFO; LOG_FORMAT=json makes every line JSON; give each request its request id."""
    if app.config["LOG_FORMAT"] == "json":
        use_json_logs()
        # Flask's own handler would write the app's lines a second time, as text.
        app.logger.removeHandler(default_handler)
    elif not any(isinstance(found, EscapingFilter) for found in default_handler.filters):
        default_handler.addFilter(EscapingFilter())
    app.logger.setLevel(logging.INFO)
    app.before_request(_start_request_id)
    app.after_request(_return_request_id)
    app.teardown_request(_end_request_id)


def _start_request_id() -> None:
    """Take the caller's X-Request-ID if it is safe, else make one; log lines of this request carry it."""
    request_id = safe_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    g.request_id = request_id
    g.request_id_token = _current_request_id.set(request_id)


def _return_request_id(response: Response) -> Response:
    """Answer with the request's id, so a caller can quote it."""
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _end_request_id(error: BaseException | None) -> None:
    """Forget the request id once the request is done (the thread serves other requests next)."""
    token = g.pop("request_id_token", None)
    if token is not None:
        _current_request_id.reset(token)


# Characters a log line must never carry as they are: control characters (a CR LF in a request path
# would write a whole forged line; ESC sequences reach the terminal reading the log), and the
# invisible format and separator characters (a right-to-left override turns text around).
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def escape_control(text: str) -> str:
    """`text` with every control or invisible character written as its escape (\\r, \\x1b, \\u202e)."""
    if text.isprintable():
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char) in _UNPRINTABLE_CATEGORIES else char
        for char in text
    )


class EscapingFilter(logging.Filter):
    """Writes a record's message with its control characters escaped (text logs; JSON escapes them itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fold the arguments into the message, escaped; the traceback (exc_text) keeps its own lines."""
        message = record.getMessage()
        escaped = escape_control(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def gunicorn_logger(*, json_lines: bool) -> type:
    """gunicorn's Logger with every access-log value escaped, and, with `json_lines`, every line JSON.

    Imported only by gunicorn.conf.py.
    """
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types

    class GunicornLogger(Logger):  # type: ignore[misc]  # subclassing an untyped class
        """gunicorn's error and access logs, their lines unforgeable, as JSON with the request id if asked."""

        def setup(self, cfg: Any) -> None:
            """gunicorn's own set-up, then each handler's formatting."""
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    if json_lines:
                        handler.setFormatter(JsonFormatter())
                        handler.addFilter(RequestIdFilter())
                    else:
                        handler.addFilter(EscapingFilter())

        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            """gunicorn's access-log values (path, user agent, headers…), each escaped: the client wrote them."""
            found: dict[str, Any] = super().atoms(resp, req, environ, request_time)
            return {name: escape_control(value) if isinstance(value, str) else value for name, value in found.items()}

    return GunicornLogger
