"""`make run` (python -m devstack): the whole app comes up, signs a user in, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from redis import Redis
from redis.exceptions import AuthenticationError

from devstack.processes import port_is_free
from devstack.settings_file import RELATIVE_PATH
from tests.integration.pages import texts
from tests.support.browserless import sign_in
from tests.support.cli import second_terminal
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.stack import ROOT

pytestmark = pytest.mark.integration

# `python -m devstack` as a terminal starts it: with Ctrl-C's signals at their defaults. A test run started in
# the background by a shell (`make test &`, `nohup make test &`) ignores SIGINT, every child inherits that, and
# a Python started with SIGINT ignored never turns it into KeyboardInterrupt. The exec keeps the process id.
AS_A_TERMINAL_STARTS_IT = (
    "import os, signal, sys; "
    "[signal.signal(number, signal.SIG_DFL) for number in (signal.SIGINT, signal.SIGQUIT)]; "
    "os.execv(sys.executable, [sys.executable, '-m', 'devstack'])"
)

# Settings that would make devstack skip its embedded servers if the caller had them set.
CONFIGURED = ("REDIS_URL", "QUEUE_REDIS_URL", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "API_BASE_URL")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren, …), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def command_line(pid: int) -> str:
    """A process's command line, for messages."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


class DevStack(NamedTuple):
    """The running `python -m devstack`, its ports, the file its output goes to and the folder it runs in."""

    process: subprocess.Popen
    ports: dict[str, int]
    log: Path
    folder: Path

    def wait_ready(self) -> str:
        """Poll until the web app is ready; returns its base URL."""
        web = f"http://127.0.0.1:{self.ports['web']}"

        def web_answers() -> bool:
            if self.process.poll() is not None:
                output = self.log.read_text(errors="replace")[-4000:]
                raise AssertionError(f"devstack exited with {self.process.returncode}; its output ends:\n{output}")
            try:
                return requests.get(f"{web}/readyz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(web_answers, timeout=60, interval=0.2, what="the devstack web app to be ready")
        return web


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[DevStack]:
    """`python -m devstack` on free ports, run from a scratch folder so its instance/ lands there."""
    ports = {"web": free_port(), "redis": free_port(), "provider": free_port()}
    env = {name: value for name, value in os.environ.items() if name not in CONFIGURED}
    env |= {
        "PORT": str(ports["web"]),
        "GATEHOUSE_DEV_REDIS_PORT": str(ports["redis"]),
        "GATEHOUSE_DEV_PROVIDER_PORT": str(ports["provider"]),
        "PYTHONPATH": str(ROOT),
        # Not the developer's instance/gatehouse.db: the app puts SQLite beside its code by default.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'gatehouse.db'}",
    }
    with open(tmp_path / "devstack.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", AS_A_TERMINAL_STARTS_IT],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
    try:
        yield DevStack(process, ports, tmp_path / "devstack.log", tmp_path)
    finally:
        # Only if the test failed before stopping it: devstack stops its children on SIGTERM;
        # anything left after that (Redis runs in its own session) is killed by pid.
        if process.poll() is None:
            left = descendants(process.pid)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pid in left:
                if is_running(pid):
                    os.kill(pid, signal.SIGKILL)


def assert_owner_only(instance: Path) -> None:
    """Third pass, item 13: instance/ and everything devstack wrote there (the SQLite database, Redis's
    append-only files, the secret key, the CLI's settings) are readable by their owner alone."""
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    written = [path for path in instance.rglob("*")]
    assert any(path.name.startswith("appendonly") for path in written), written  # the embedded Redis's AOF
    assert (instance / "dev-secret-key").exists()
    shared = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in written if path.stat().st_mode & 0o077}
    assert shared == {}


@pytest.mark.parametrize("ctrl_c", ["process group", "devstack only"])
def test_make_run_serves_the_app_and_ctrl_c_stops_every_child(devstack: DevStack, ctrl_c: str) -> None:
    process, ports = devstack.process, devstack.ports
    web = devstack.wait_ready()
    settings_file = devstack.folder / RELATIVE_PATH
    # The CLI's copy of the settings holds the secret key: the owner alone may read it.
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    with requests.Session() as browser:
        page = sign_in(browser, web, "devstack-user", next_path="/profile")
    assert page.status_code == 200
    assert texts(page.text, "signed-in-as") == ["devstack-user"]
    # Once the worker has run the sign-in job it is fully up (its scheduler process included),
    # so the process tree below devstack is complete.
    redis_url = json.loads(settings_file.read_text())["REDIS_URL"]
    with Redis.from_url(redis_url, socket_timeout=5) as client:
        wait_until(lambda: client.zcard("rq:finished:gatehouse") >= 1, timeout=30, what="the worker to run a job")
    assert_owner_only(devstack.folder / "instance")
    # Third pass, item 13: the embedded Redis has a password of its own; without it nothing is answered.
    with Redis(port=ports["redis"], socket_timeout=5) as stranger, pytest.raises(AuthenticationError):
        stranger.get("anything")
    children = descendants(process.pid)
    names = " ".join(command_line(pid) for pid in children)
    for expected in ("redis-server", "oidc_provider_mock", "worker", "run --host"):
        assert expected in names, f"no {expected} process under devstack: {names}"

    # A terminal's Ctrl-C reaches the whole foreground group; a supervisor may signal devstack alone.
    if ctrl_c == "process group":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)

    assert process.wait(timeout=15) == 0
    # A clean stop: no child dies with a traceback (e.g. a worker whose Redis went first).
    assert "Traceback" not in devstack.log.read_text(errors="replace")
    wait_until(
        lambda: not [pid for pid in children if is_running(pid)],
        timeout=5,
        what="every devstack child to exit",
    )
    for port in ports.values():
        assert port_is_free(port), f"port {port} still answers"
    assert not settings_file.exists(), "a stopped devstack leaves no settings for the CLI"


def test_the_cli_in_a_second_terminal_uses_the_running_devstack(devstack: DevStack) -> None:
    web = devstack.wait_ready()
    with requests.Session() as browser:
        sign_in(browser, web, "second-terminal-user")

    def listed() -> list[dict[str, object]]:
        done = second_terminal(devstack.folder, "users", "list", "--json")
        assert done.returncode == 0, done.stderr
        users = [json.loads(line) for line in done.stdout.splitlines()]
        return [user for user in users if user["subject"] == "second-terminal-user"]

    [user] = wait_until(listed, timeout=30, interval=0.3, what="the worker to persist the signed-in user")
    assert user["issuer"] == f"http://127.0.0.1:{devstack.ports['provider']}"

    # Killed, devstack cannot delete its file: the CLI sees that no devstack holds it any more.
    children = descendants(devstack.process.pid)
    devstack.process.kill()
    devstack.process.wait()
    try:
        assert (devstack.folder / RELATIVE_PATH).exists()
        done = second_terminal(devstack.folder, "users", "list", "--json")
    finally:
        for pid in children:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "left from a `make run` that is no longer running" in done.stderr
