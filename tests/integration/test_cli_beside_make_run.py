"""A CLI command in a second terminal beside `make run`: `flask --app app …` as a child process, on the
settings `make run` published in instance/devstack.json, or refused with the reason (devstack/settings_file.py;
tests/unit/test_devstack_settings_file.py checks the file itself in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.settings_file import RELATIVE_PATH, PublishedSettings, publish
from tests.support.cli import second_terminal
from tests.support.devstack_files import DEVSTACK_ENV, make_run_folder, write_file

pytestmark = pytest.mark.integration


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder like the one `make run` runs in, with its instance/ subfolder."""
    return make_run_folder(tmp_path)


def test_the_cli_runs_on_the_published_settings(folder: Path) -> None:
    # Nothing is contacted: `users list` reads the database only.
    env = {**DEVSTACK_ENV, "DATABASE_URL": f"sqlite:///{folder / 'gatehouse.db'}"}
    settings = publish(folder, env)
    try:
        assert second_terminal(folder, "db", "upgrade").returncode == 0
        done = second_terminal(folder, "users", "list", "--json")
    finally:
        settings.remove()
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none", "no `make run` is running"),
        ("stale", "left from a `make run` that is no longer running"),
        ("world-readable", "can be read or changed by other users"),
        ("bad value", "REDIS_URL must be a redis://, rediss://, unix://, redis+sentinel://, redis+cluster://"),
    ],
)
def test_the_cli_explains_an_unusable_file_without_a_traceback(folder: Path, setup: str, expected: str) -> None:
    settings: PublishedSettings | None = None
    if setup == "stale":
        write_file(folder, json.dumps({name: DEVSTACK_ENV[name] for name in ("REDIS_URL", "SECRET_KEY")}))
    elif setup == "world-readable":
        settings = publish(folder, DEVSTACK_ENV)
        (folder / RELATIVE_PATH).chmod(0o644)
    elif setup == "bad value":
        settings = publish(folder, {**DEVSTACK_ENV, "REDIS_URL": "ftp://127.0.0.1/"})
    try:
        done = second_terminal(folder, "users", "list", "--json")
    finally:
        if settings is not None:
            settings.remove()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert DEVSTACK_ENV["SECRET_KEY"] not in done.stderr, "the secret key is never printed"
