"""A CLI command run with a bad configuration: the list of problems, no traceback, exit code 2.

Each runs `flask --app app …` in a child process with exactly the environment it is given, as an operator does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_flask
from tests.support.environments import several

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", [["users", "list"], ["worker", "--burst"], ["db", "upgrade"], ["--help"]])
def test_a_bad_configuration_is_listed_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    """Every setting's problem is named on stderr, and the exit code says "usage error" (2)."""
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GATEHOUSE_ENV": "production"}
    done = run_flask(*command, env=environ)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for problem in ("SECRET_KEY is required", "REDIS_URL is required", "PUBLIC_URL is required in production"):
        assert problem in done.stderr


def test_a_cluster_queue_url_stops_the_worker_with_a_clear_message(tmp_path: Path) -> None:
    """RQ cannot run on a Redis Cluster: `worker` refuses QUEUE_REDIS_URL=redis+cluster://… before connecting."""
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "cli-configuration-secret-key-0123456789",
        "REDIS_URL": "redis+sentinel://127.0.0.1:1,127.0.0.1:2/gatehouse",
        "QUEUE_REDIS_URL": "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "OIDC_ISSUER": "http://127.0.0.1:1",
        "OIDC_CLIENT_ID": "gatehouse",
        "OIDC_CLIENT_SECRET": "secret",
    }
    done = run_flask("worker", "--burst", env=environ)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "QUEUE_REDIS_URL cannot name a Redis Cluster: RQ cannot run on one" in done.stderr
    assert "REDIS_URL" not in done.stderr.replace("QUEUE_REDIS_URL", "")  # the Sentinel URL is fine


def test_both_provider_forms_at_once_stop_a_command_with_exit_code_2(tmp_path: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **several(OIDC_CLIENT_ID="client")}
    done = run_flask("users", "list", env=environ)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "not both" in done.stderr
