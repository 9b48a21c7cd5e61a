"""The web server's settings (server_settings.py, read by gunicorn.conf.py): defaults, and every bad value named."""

from __future__ import annotations

import pytest

from config import ConfigError
from server_settings import load_server_settings


def test_nothing_set_gives_the_documented_defaults() -> None:
    settings = load_server_settings({})
    assert settings.bind == "0.0.0.0:8000"
    assert settings.workers >= 2
    assert (settings.threads, settings.timeout, settings.graceful_timeout) == (4, 30, 30)
    assert (settings.keepalive, settings.max_requests) == (5, 0)
    assert settings.forwarded_allow_ips == "127.0.0.1,::1"
    assert (settings.access_log, settings.log_level, settings.control_socket) == ("-", "info", None)
    assert settings.json_logs is False


def test_port_names_the_bind_address_unless_a_bind_is_given() -> None:
    assert load_server_settings({"PORT": "9001"}).bind == "0.0.0.0:9001"
    assert load_server_settings({"PORT": "9001", "GUNICORN_BIND": "127.0.0.1:7000"}).bind == "127.0.0.1:7000"


def test_an_empty_access_log_turns_it_off() -> None:
    assert load_server_settings({"GUNICORN_ACCESS_LOG": ""}).access_log is None


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load_server_settings(
            {"GUNICORN_THREADS": "many", "WEB_CONCURRENCY": "0", "GUNICORN_TIMEOUT": "-1", "GUNICORN_LOG_LEVEL": "loud"}
        )
    assert raised.value.problems == [
        "WEB_CONCURRENCY must be at least 1 (got 0)",
        "GUNICORN_THREADS must be a whole number (got 'many')",
        "GUNICORN_TIMEOUT must be at least 0 (got -1)",
        "GUNICORN_LOG_LEVEL must be one of debug, info, warning, error, critical (got 'loud')",
    ]


@pytest.mark.parametrize("raw", ["1.5", "1e3", "²", "9" * 5000, " "])
def test_a_number_that_is_not_a_plain_whole_number_is_refused_or_ignored(raw: str) -> None:
    if not raw.strip():
        assert load_server_settings({"GUNICORN_THREADS": raw}).threads == 4
        return
    with pytest.raises(ConfigError, match="GUNICORN_THREADS must be a whole number"):
        load_server_settings({"GUNICORN_THREADS": raw})
