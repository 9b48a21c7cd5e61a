"""The app's command line in a process of its own: `flask --app app ARGS`, as an operator or a new terminal runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_flask(
    *args: str, env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` in `cwd` with exactly `env` (nothing inherited); output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def second_terminal(folder: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS` as a new terminal in `folder` runs it: a clean environment (PATH, HOME), plus `env`."""
    clean = {"PATH": os.environ["PATH"], "HOME": str(folder), "PYTHONPATH": str(ROOT), **(env or {})}
    return run_flask(*args, env=clean, cwd=folder)
