"""`make run` (python -m devstack): the whole app comes up, signs a user in, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from redis import Redis

from devstack.processes import free_port, port_is_free
from tests.integration.pages import texts
from tests.support.browserless import sign_in
from tests.support.polling import wait_until
from tests.support.stack import ROOT

pytestmark = pytest.mark.integration

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
    """The running `python -m devstack`, its ports and the file its output goes to."""

    process: subprocess.Popen
    ports: dict[str, int]
    log: Path


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
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gatehouse.db'}",
    }
    with open(tmp_path / "devstack.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
    try:
        yield DevStack(process, ports, tmp_path / "devstack.log")
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


@pytest.mark.parametrize("ctrl_c", ["process group", "devstack only"])
def test_make_run_serves_the_app_and_ctrl_c_stops_every_child(devstack: DevStack, ctrl_c: str) -> None:
    process, ports = devstack.process, devstack.ports
    web = f"http://127.0.0.1:{ports['web']}"

    def web_answers() -> bool:
        assert process.poll() is None, f"devstack exited with {process.returncode}"
        try:
            return requests.get(f"{web}/readyz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(web_answers, timeout=60, interval=0.2, what="the devstack web app to be ready")
    with requests.Session() as browser:
        page = sign_in(browser, web, "devstack-user", next_path="/profile")
    assert page.status_code == 200
    assert texts(page.text, "signed-in-as") == ["devstack-user"]
    # Once the worker has run the sign-in job it is fully up (its scheduler process included),
    # so the process tree below devstack is complete.
    with Redis(port=ports["redis"], socket_timeout=5) as client:
        wait_until(lambda: client.zcard("rq:finished:gatehouse") >= 1, timeout=30, what="the worker to run a job")
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
