"""Fault injection on real processes: find a worker's work horse, SIGKILL a process tree, lock a SQLite
database, time recoveries."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread or process just exited
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children before grandchildren."""
    found, pending = [], [pid]
    while pending:
        for child in children(pending.pop()):
            found.append(child)
            pending.append(child)
    return found


def process_group(pid: int) -> int | None:
    """The process group of `pid`, or None if it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name: state, ppid, pgrp, ...
    return int(stat.rsplit(")", 1)[1].split()[2])


def work_horse(worker_pid: int) -> int | None:
    """The pid of the work horse an RQ worker forked for its current job, if any.

    RQ puts the horse in its own process group (os.setpgrp), unlike the scheduler process.
    """
    for child in children(worker_pid):
        if process_group(child) == child:
            return child
    return None


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill(pid: int) -> None:
    """SIGKILL one process (no clean-up handlers run, as in an OOM kill or a power cut)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and everything it started (the worker, its horse and its scheduler); returns the pids."""
    doomed = [pid, *descendants(pid)]
    for victim in doomed:
        kill(victim)
    return doomed


@contextlib.contextmanager
def sqlite_locked(path: str | Path) -> Iterator[None]:
    """Hold SQLite's exclusive lock: no one else reads or writes until the block exits.

    Others wait up to their busy timeout (the app keeps Python's sqlite3 default, 5 s), then fail with
    "database is locked".
    """
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


class Stopwatch:
    """Seconds since it was started, for recovery-time measurements."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since start."""
        return time.monotonic() - self.started
