"""instance/devstack.json: `make run`'s settings for a CLI command in a second terminal, and every way it is refused.

In process: devstack.settings_file is called directly (a lock held through one open file blocks another
open of the same file, even in one process). tests/integration/test_cli_beside_make_run.py runs
`flask --app app …` as a child process, which is what a second terminal does.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.settings_file import (
    MAX_BYTES,
    RELATIVE_PATH,
    AlreadyRunning,
    PublishedSettings,
    is_held,
    publish,
    running_settings,
)
from tests.support.devstack_files import DEVSTACK_ENV, make_run_folder, write_file


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder like the one `make run` runs in, with its instance/ subfolder."""
    return make_run_folder(tmp_path)


@pytest.fixture
def published(folder: Path) -> Iterator[PublishedSettings]:
    """The settings file of a `make run` that is running (this test process holds its lock)."""
    settings = publish(folder, DEVSTACK_ENV)
    yield settings
    settings.remove()


def test_a_running_make_run_publishes_its_settings_for_the_cli(folder: Path, published: PublishedSettings) -> None:
    path = folder / RELATIVE_PATH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["OIDC_ISSUER"] == "http://127.0.0.1:9400"
    assert "PATH" not in json.loads(path.read_text()), "only the app's settings are written"
    assert is_held(path)

    found = running_settings({"PATH": "/usr/bin", "LOG_FORMAT": "json"}, folder)
    assert found is not None and not found.problems
    assert found.environ["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert found.environ["SECRET_KEY"] == DEVSTACK_ENV["SECRET_KEY"]
    assert found.environ["GATEHOUSE_ENV"] == "development"
    # Settings the file does not hold still come from the environment.
    assert found.environ["LOG_FORMAT"] == "json"


def test_a_stopped_make_run_leaves_no_file(folder: Path) -> None:
    settings = publish(folder, DEVSTACK_ENV)
    settings.remove()
    assert not (folder / RELATIVE_PATH).exists()
    found = running_settings({}, folder)
    assert found is not None and found.environ == {}
    assert "no `make run` is running" in found.hints[0]


def test_a_file_left_by_a_killed_make_run_is_not_used(folder: Path) -> None:
    write_file(folder, json.dumps({"REDIS_URL": "redis://127.0.0.1:6390/0"}))
    found = running_settings({}, folder)
    assert found is not None
    assert found.environ == {}, "a dead run's Redis must not be used"
    assert "no longer running" in found.hints[0]


def test_the_environment_overrides_the_file(folder: Path, published: PublishedSettings) -> None:
    found = running_settings({"REDIS_URL": "redis://elsewhere:6379/0"}, folder)
    assert found is not None
    assert found.environ == {"REDIS_URL": "redis://elsewhere:6379/0"}, "the two configurations are never mixed"
    assert "the environment sets REDIS_URL" in found.hints[0]


@pytest.mark.parametrize("env_name", ["production", "testing"])
def test_production_and_testing_never_read_the_file(folder: Path, published: PublishedSettings, env_name: str) -> None:
    assert running_settings({"GATEHOUSE_ENV": env_name}, folder) is None


def test_a_configured_environment_without_a_file_needs_no_hint(folder: Path) -> None:
    assert running_settings({"REDIS_URL": "redis://elsewhere:6379/0"}, folder) is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o606, 0o660])
def test_a_file_others_can_read_or_write_is_refused(folder: Path, published: PublishedSettings, mode: int) -> None:
    (folder / RELATIVE_PATH).chmod(mode)
    found = running_settings({}, folder)
    assert found is not None
    assert found.environ == {}
    assert "other users" in found.problems[0] and "secret key" in found.problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({"REDIS_URL": 6390}), "REDIS_URL must be a non-empty string"),
        (json.dumps({"REDIS_URL": ""}), "REDIS_URL must be a non-empty string"),
        (json.dumps({"GATEHOUSE_ENV": "production"}), "'GATEHOUSE_ENV' is not a setting it may hold"),
        (json.dumps({"PYTHONPATH": "/home/attacker"}), "'PYTHONPATH' is not a setting it may hold"),
        (" " * (MAX_BYTES + 1) + "{}", "larger than"),
    ],
)
def test_a_file_with_bad_values_is_refused(folder: Path, text: str, expected: str) -> None:
    path = write_file(folder, text)
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as if its `make run` were running
        found = running_settings({}, folder)
    assert found is not None
    assert found.environ == {}
    assert any(expected in problem for problem in found.problems), found.problems


def test_a_fifo_in_place_of_the_file_does_not_hang(folder: Path) -> None:
    os.mkfifo(folder / RELATIVE_PATH, 0o600)
    found = running_settings({}, folder)
    assert found is not None
    assert "not a regular file" in found.problems[0]


def test_a_symlink_in_place_of_the_file_is_not_followed(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "settings.json"
    elsewhere.write_text(json.dumps({"REDIS_URL": "redis://attacker:6379/0"}))
    elsewhere.chmod(0o600)
    (folder / RELATIVE_PATH).symlink_to(elsewhere)
    found = running_settings({}, folder)
    assert found is not None
    assert found.environ == {}
    assert "cannot be opened" in found.problems[0]


def test_a_second_make_run_in_the_same_folder_is_refused(folder: Path, published: PublishedSettings) -> None:
    with pytest.raises(AlreadyRunning):
        publish(folder, DEVSTACK_ENV)
    assert is_held(folder / RELATIVE_PATH), "the running one keeps its file"


def test_removing_never_deletes_a_newer_run_s_file(folder: Path) -> None:
    old = publish(folder, DEVSTACK_ENV)
    (folder / RELATIVE_PATH).unlink()  # e.g. deleted by hand while running, then a new run wrote its own
    newer = write_file(folder, json.dumps({"REDIS_URL": "redis://127.0.0.1:7000/0"}))
    old.remove()
    assert newer.exists()
