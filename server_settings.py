"""The web server's settings (gunicorn.conf.py), read from the environment and validated in one place.

Like `config.load_settings` for the app, `load_server_settings` reads the environment it is
given and raises one `ConfigError` naming every bad value, so a typo stops gunicorn at start
with the whole list rather than the first problem it meets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from config import ConfigError

# Whole-number settings: name -> (default, smallest allowed).
_WHOLE_NUMBERS = {
    "PORT": (8000, 1),
    "WEB_CONCURRENCY": (max(2, os.cpu_count() or 1), 1),
    "GUNICORN_THREADS": (4, 1),
    "GUNICORN_TIMEOUT": (30, 0),
    "GUNICORN_GRACEFUL_TIMEOUT": (30, 0),
    "GUNICORN_KEEPALIVE": (5, 0),
    "GUNICORN_MAX_REQUESTS": (0, 0),
}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn.conf.py hands gunicorn (see its docstring for each variable)."""

    bind: str
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    max_requests: int
    forwarded_allow_ips: str
    access_log: str | None
    log_level: str
    control_socket: str | None
    json_logs: bool


def load_server_settings(environ: Mapping[str, str] | None = None) -> ServerSettings:
    """The validated server settings, or ConfigError naming every problem."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    numbers = {name: _whole_number(environ, name, problems) for name in _WHOLE_NUMBERS}
    log_level = environ.get("GUNICORN_LOG_LEVEL", "").strip().lower() or "info"
    if log_level not in LOG_LEVELS:
        problems.append(f"GUNICORN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})")
    if problems:
        raise ConfigError(problems)
    return ServerSettings(
        bind=environ.get("GUNICORN_BIND") or f"0.0.0.0:{numbers['PORT']}",
        workers=numbers["WEB_CONCURRENCY"],
        threads=numbers["GUNICORN_THREADS"],
        timeout=numbers["GUNICORN_TIMEOUT"],
        graceful_timeout=numbers["GUNICORN_GRACEFUL_TIMEOUT"],
        keepalive=numbers["GUNICORN_KEEPALIVE"],
        max_requests=numbers["GUNICORN_MAX_REQUESTS"],
        forwarded_allow_ips=environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        access_log=environ.get("GUNICORN_ACCESS_LOG", "-") or None,
        log_level=log_level,
        control_socket=environ.get("GUNICORN_CONTROL_SOCKET") or None,
        # The app validates LOG_FORMAT itself (config.py); gunicorn's own lines follow it.
        json_logs=environ.get("LOG_FORMAT") == "json",
    )


def _whole_number(environ: Mapping[str, str], name: str, problems: list[str]) -> int:
    """The setting's whole number (its default when unset); a bad value is added to `problems`."""
    default, smallest = _WHOLE_NUMBERS[name]
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number (got {raw!r})")
        return default
    if value < smallest:
        problems.append(f"{name} must be at least {smallest} (got {value})")
        return default
    return value
