"""The app's command line in a process of its own: `flask --app app ARGS`, as an operator or a new terminal runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_flask(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` with exactly `env` (nothing inherited); output captured as text.

    In `cwd`, or else in an empty folder with the checkout on PYTHONPATH: a CLI command run in the
    checkout would read the settings of a `make run` the developer has running there
    (instance/devstack.json), and the test would see those instead of `env`.
    """
    command = [sys.executable, "-m", "flask", "--app", "app", *args]
    if cwd is not None:
        return _run(command, cwd, dict(env), timeout, check)
    with tempfile.TemporaryDirectory(prefix="gatehouse-cli-") as folder:
        return _run(command, Path(folder), {"PYTHONPATH": str(ROOT), **env}, timeout, check)


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float, check: bool
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=timeout)


def second_terminal(folder: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS` as a new terminal in `folder` runs it: a clean environment (PATH, HOME), plus `env`."""
    clean = {"PATH": os.environ["PATH"], "HOME": str(folder), "PYTHONPATH": str(ROOT), **(env or {})}
    return run_flask(*args, env=clean, cwd=folder)
