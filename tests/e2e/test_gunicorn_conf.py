"""gunicorn.conf.py takes its settings from the environment, with safe defaults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.stack import GUNICORN_CONF, ROOT

pytestmark = [pytest.mark.e2e]

# --print-config loads the app, which checks its settings (and connects nowhere).
APP_ENV = {
    "GATEHOUSE_ENV": "development",
    "SECRET_KEY": "gunicorn-conf-tests-secret-key-0123456789",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "OIDC_ISSUER": "http://127.0.0.1:1",
    "OIDC_CLIENT_ID": "gatehouse",
    "OIDC_CLIENT_SECRET": "secret",
    "DATABASE_URL": "sqlite://",
}


def gunicorn_settings(**env: str) -> dict[str, str]:
    """`gunicorn -c gunicorn.conf.py --print-config` under `env`, as {setting: value}."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("GUNICORN_", "WEB_", "PORT"))}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--print-config", "app:create_app()"],
        cwd=ROOT,
        env={**clean, **APP_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, separator, value = line.partition("=")
        if separator:
            settings[name.strip()] = value.strip()
    return settings


def test_defaults_are_threaded_workers_on_port_8000_without_a_control_socket() -> None:
    """Nothing set: gthread workers, 4 threads, all interfaces on 8000, query strings kept out of the access log."""
    settings = gunicorn_settings()
    assert settings["bind"] == "['0.0.0.0:8000']"
    assert settings["worker_class"] == "gthread"
    assert settings["threads"] == "4"
    assert int(settings["workers"]) >= 2
    assert settings["control_socket_disable"] == "True"
    assert settings["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert "%(U)s" in settings["access_log_format"] and "%(r)s" not in settings["access_log_format"]


def test_environment_overrides_every_knob() -> None:
    """Bind, processes, threads, timeouts, proxies and the control socket all come from the environment."""
    settings = gunicorn_settings(
        GUNICORN_BIND="10.0.0.5:9000",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT="45",
        GUNICORN_KEEPALIVE="75",
        GUNICORN_MAX_REQUESTS="0",
        FORWARDED_ALLOW_IPS="10.0.0.0/24",
        GUNICORN_CONTROL_SOCKET="/run/gatehouse/gunicorn.ctl",
    )
    assert settings["bind"] == "['10.0.0.5:9000']"
    assert (settings["workers"], settings["threads"], settings["timeout"]) == ("3", "8", "45")
    assert (settings["keepalive"], settings["max_requests"]) == ("75", "0")
    assert settings["forwarded_allow_ips"] == "['10.0.0.0/24']"
    assert settings["control_socket_disable"] == "False"
    assert settings["control_socket"] == "/run/gatehouse/gunicorn.ctl"


def test_a_malformed_number_stops_gunicorn_with_the_setting_named() -> None:
    """GUNICORN_THREADS=many is refused at start, naming the variable."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--print-config", "app:create_app()"],
        cwd=ROOT,
        env={**os.environ, **APP_ENV, "GUNICORN_THREADS": "many"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "GUNICORN_THREADS must be a whole number (got 'many')" in result.stdout + result.stderr
