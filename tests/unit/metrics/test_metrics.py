"""The metrics package: fixed label sets, the work horses' shared files, the allow-list setting, gunicorn's hooks."""

from __future__ import annotations

import ipaddress
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import metrics
from app import create_app
from config import ConfigError, load_settings
from metrics import process
from metrics.exposition import JobCountsCollector, address_allowed
from signin.failures import FAILURE_MESSAGES

ROOT = Path(__file__).resolve().parents[3]
REQUIRED = {
    "SECRET_KEY": "unit-test-secret-key-that-is-long-enough",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "OIDC_ISSUER": "http://127.0.0.1:1",
    "OIDC_CLIENT_ID": "gatehouse",
    "OIDC_CLIENT_SECRET": "secret",
    "GATEHOUSE_ENV": "testing",
}


def test_every_sign_in_failure_kind_has_its_own_label_value() -> None:
    create_app(REQUIRED)  # the sign-in flow registers its kinds of failure with the app (signin/setup.py)
    assert set(metrics.sign_in_results()) == set(FAILURE_MESSAGES) | {"success"}


@pytest.mark.parametrize(
    ("value", "allowed", "other", "expected"),
    [
        ("expired", ("success", *FAILURE_MESSAGES), "failed", "expired"),
        ("alice@example.test", ("success", *FAILURE_MESSAGES), "failed", "failed"),
        ("https://idp.example/", metrics.OUTBOUND_TARGETS, "api", "api"),
        ("", metrics.REFRESH_RESULTS, "rejected", "rejected"),
    ],
)
def test_a_label_never_takes_a_value_from_outside_its_set(
    value: str, allowed: tuple[str, ...], other: str, expected: str
) -> None:
    assert metrics.one_of(value, allowed, other) == expected


def test_an_unknown_kind_is_counted_as_failed() -> None:
    before = metrics.SIGN_INS.labels(result="failed")._value.get()
    metrics.sign_in("x" * 1000)
    assert metrics.SIGN_INS.labels(result="failed")._value.get() == before + 1


class FakeWorker:
    def __init__(self, *, is_horse: bool):
        self.is_horse = is_horse


def test_work_horses_write_to_their_workers_horse_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_work_horse", None)
    assert process.process_identity() == os.getpid()
    process.enter_work_horse(FakeWorker(is_horse=True))  # type: ignore[arg-type]
    assert process.process_identity() == f"{os.getppid()}-horse"
    # Anything the horse forked in turn is a process of its own again.
    monkeypatch.setattr(os, "getpid", lambda: 4_000_001)
    assert process.process_identity() == 4_000_001


def test_a_job_run_in_the_worker_itself_keeps_the_workers_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_work_horse", None)
    process.enter_work_horse(FakeWorker(is_horse=False))  # type: ignore[arg-type]
    assert process.process_identity() == os.getpid()


def test_a_source_that_does_not_answer_is_reported_not_guessed() -> None:
    counts = {"queued": 3, "started": None, "scheduled": 0, "failed": 2, "outbox": None}
    families = {family.name: family for family in JobCountsCollector(lambda: counts).collect()}
    jobs = {sample.labels["state"]: sample.value for sample in families["gatehouse_jobs"].samples}
    assert jobs == {"queued": 3, "scheduled": 0, "failed": 2}
    assert "gatehouse_outbox_jobs" not in families
    errors = {sample.labels["source"]: sample.value for sample in families["gatehouse_metrics_source_error"].samples}
    assert errors == {"queue": 1, "database": 1}


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        (" 127.0.0.1 ", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("127.0.0.1, 10.0.0.1", False),
        ("", False),
        (None, False),
    ],
)
def test_address_allowed_by_default(address: str | None, allowed: bool) -> None:
    settings = load_settings(environ=REQUIRED)
    assert address_allowed(address, settings["METRICS_ALLOWED_NETWORKS"]) is allowed


def test_the_allow_list_comes_from_the_environment() -> None:
    settings = load_settings(environ={**REQUIRED, "METRICS_ALLOWED_NETWORKS": "10.1.0.0/16, 2001:db8::7"})
    assert settings["METRICS_ALLOWED_NETWORKS"] == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("2001:db8::7/128"),
    )


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "localhost", "10.0.0.0/8; 127.0.0.1", "::1/200"])
def test_a_bad_allow_list_is_named(raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={**REQUIRED, "METRICS_ALLOWED_NETWORKS": raw})
    assert any(problem.startswith("METRICS_ALLOWED_NETWORKS must be") for problem in refused.value.problems)


def test_a_bad_allow_list_override_is_named_too() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ=REQUIRED, overrides={"METRICS_ALLOWED_NETWORKS": "everyone"})
    assert any("METRICS_ALLOWED_NETWORKS" in problem for problem in refused.value.problems)


def gunicorn_conf() -> dict[str, Any]:
    """gunicorn.conf.py's settings and hooks, as gunicorn loads them."""
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_server_start_removes_only_the_files_of_dead_processes(tmp_path: Path) -> None:
    live, dead = os.getpid(), dead_pid()
    kept = [tmp_path / f"counter_{live}.db", tmp_path / f"histogram_{live}-horse.db"]
    gone = [tmp_path / f"counter_{dead}.db", tmp_path / f"gauge_livesum_{dead}.db", tmp_path / "stray.db"]
    for path in kept + gone:
        path.write_bytes(b"")
    gunicorn_conf()["remove_dead_processes_files"](str(tmp_path))
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_without_a_directory_gunicorn_makes_a_private_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Empty counts as unset; setenv (unlike delenv of an absent name) restores the environment afterwards.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("GATEHOUSE_METRICS_PRIVATE_DIR", "")
    hooks = gunicorn_conf()
    hooks["on_starting"](None)
    private = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert private.is_dir() and private.name.startswith("gatehouse-metrics-")
    hooks["on_exit"](None)
    assert not private.exists()


def test_a_configured_directory_is_created_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    directory = tmp_path / "samples"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.setenv("GATEHOUSE_METRICS_PRIVATE_DIR", "")
    hooks = gunicorn_conf()
    hooks["on_starting"](None)
    hooks["on_exit"](None)
    assert directory.is_dir()
