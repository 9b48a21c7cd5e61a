"""The reliability suite's measured recovery times, gathered from every test's report (pytest-xdist workers' too)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# What tests/reliability/conftest.py's `timings` fixture records: user properties named with this prefix on a
# test's teardown report.
RECOVERY_TIME = "recovery time: "
RECOVERY_TIMES_FILE = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability-timings.json"


class RecoveryTimes:
    """Gathers the recovery times from the tests' reports, prints them at the end of the run and keeps them in
    test-artifacts/ for docs/reliability.md. Registered by the top conftest, which the pytest-xdist
    controller loads as well: it alone sees every worker's reports."""

    def __init__(self) -> None:
        self.measured: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Take the times a test recorded."""
        if report.when == "teardown":
            for name, value in report.user_properties:
                if name.startswith(RECOVERY_TIME):
                    self.measured[name.removeprefix(RECOVERY_TIME)] = float(value)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
        """Print the times (and write the file) once: in the controller, or in a run without workers."""
        if not self.measured or hasattr(config, "workerinput"):
            return
        terminalreporter.section("reliability: measured recovery times (seconds)")
        for name, seconds in sorted(self.measured.items()):
            terminalreporter.write_line(f"{name:<60} {seconds:8.2f}")
        if os.access(RECOVERY_TIMES_FILE.parents[1], os.W_OK):
            RECOVERY_TIMES_FILE.parent.mkdir(exist_ok=True)
            RECOVERY_TIMES_FILE.write_text(json.dumps(self.measured, indent=2, sort_keys=True) + "\n")
