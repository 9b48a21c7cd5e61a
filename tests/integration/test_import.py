"""Nothing at import: every Gatehouse module imports with no sockets, no settings and a broken environment.

Each test imports everything in a fresh interpreter of its own (a child process): an integration test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child process, so the modules are imported for the first time there.
IMPORT_EVERYTHING = r"""
import importlib, json, os, pkgutil, socket, sys

def refuse(*args, **kwargs):
    raise AssertionError("a socket was opened at import")

class NoSocket(socket.socket):
    # A class, not a function: ssl subclasses socket.socket at import.
    def __init__(self, *args, **kwargs):
        refuse()

socket.socket = NoSocket
socket.create_connection = refuse
socket.socketpair = refuse

SETTINGS = {"GATEHOUSE_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "QUEUE_REDIS_URL", "OIDC_ISSUER",
            "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_SCOPES", "API_BASE_URL", "API_DASHBOARD_PATH",
            "SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"}
settings_read = []

class WatchedEnviron(type(os.environ)):
    # Records every read of a Gatehouse setting (Mapping.get and `in` go through these).
    def __getitem__(self, key):
        if key in SETTINGS:
            settings_read.append(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        if key in SETTINGS:
            settings_read.append(key)
        return super().__contains__(key)

# The standard library's wsgiref copies the whole environment when imported (prometheus_client
# imports it): a copy of everything, not a read of our settings, so it happens before the watch.
import wsgiref.handlers

original = os.environ
os.environ = WatchedEnviron(original._data, original.encodekey, original.decodekey,
                            original.encodevalue, original.decodevalue)

PACKAGES = ["blueprints", "sessions", "oidc", "jobs", "clients", "models", "commands", "metrics"]
MODULES = ["app", "config", "connections", "extensions", "errors", "web"]
imported = []
for name in MODULES + PACKAGES:
    module = importlib.import_module(name)
    imported.append(name)
    if name in PACKAGES:
        for info in pkgutil.walk_packages(module.__path__, prefix=name + "."):
            importlib.import_module(info.name)
            imported.append(info.name)

print(json.dumps({"imported": imported, "settings_read": settings_read}))
"""


def run_imports(env: dict[str, str]) -> dict[str, list[str]]:
    """Import every module in a fresh interpreter with `env`; return what it imported and read."""
    finished = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_import_opens_no_socket_with_an_empty_environment() -> None:
    result = run_imports({})
    assert "app" in result["imported"]
    for module in (
        "blueprints.auth.routes",
        "blueprints.profile.forms",
        "sessions.store",
        "oidc.provider",
        "jobs.worker",
        "clients.downstream",
        "models.user",
        "commands.users",
        "metrics.exposition",
        "blueprints.metrics.routes",
    ):
        assert module in result["imported"]
    assert result["settings_read"] == []


def test_import_ignores_a_broken_environment() -> None:
    broken = {
        "GATEHOUSE_ENV": "nonsense",
        "REDIS_URL": "not a url",
        "DATABASE_URL": "mysql://nowhere",
        "SESSION_IDLE_TIMEOUT": "forever",
        "OIDC_ISSUER": "ftp://idp",
    }
    result = run_imports(broken)
    assert "app" in result["imported"]
    assert result["settings_read"] == []
