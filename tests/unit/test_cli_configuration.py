"""A CLI command run with a bad configuration: the list of problems, no traceback, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [["users", "list"], ["worker", "--burst"], ["db", "upgrade"]])
def test_a_bad_configuration_is_listed_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    """Every setting's problem is named on stderr, and the exit code says "usage error" (2)."""
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GATEHOUSE_ENV": "production"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *command],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for problem in ("SECRET_KEY is required", "REDIS_URL is required", "PUBLIC_URL is required in production"):
        assert problem in done.stderr
