"""A CLI command run with a bad configuration: the list of problems, no traceback, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_flask


@pytest.mark.parametrize("command", [["users", "list"], ["worker", "--burst"], ["db", "upgrade"]])
def test_a_bad_configuration_is_listed_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    """Every setting's problem is named on stderr, and the exit code says "usage error" (2)."""
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GATEHOUSE_ENV": "production"}
    done = run_flask(*command, env=environ)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for problem in ("SECRET_KEY is required", "REDIS_URL is required", "PUBLIC_URL is required in production"):
        assert problem in done.stderr
