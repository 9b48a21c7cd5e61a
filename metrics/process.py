"""Which files of PROMETHEUS_MULTIPROC_DIR a process writes its samples to.

In multiprocess mode prometheus_client keeps each process's samples in files named after
its pid, and a scrape adds up every file in the directory, so counts of exited processes
still count. The RQ worker forks a new work horse for every job, which would leave new
files behind for every job (and make each scrape slower than the last). A worker runs one
work horse at a time, so all its work horses can safely share one set of files, named
after the worker: `<worker pid>-horse`. Every other process keeps prometheus_client's
own naming (its pid).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import values

if TYPE_CHECKING:
    from rq.worker import BaseWorker

# (pid of the work horse, the identity it writes under); None outside a work horse.
_work_horse: tuple[int, str] | None = None


def process_identity() -> int | str:
    """The name of this process's sample files: its pid, or its worker's for a work horse."""
    if _work_horse is not None and _work_horse[0] == os.getpid():
        return _work_horse[1]
    return os.getpid()


def use_process_identity() -> None:
    """In multiprocess mode, name sample files by `process_identity` (call before any metric has a value).

    prometheus_client chose its value class from PROMETHEUS_MULTIPROC_DIR when it was
    imported; this only swaps the multiprocess class for one that asks `process_identity`.
    """
    if getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue(process_identity)  # type: ignore[no-untyped-call]


def enter_work_horse(worker: BaseWorker) -> None:
    """Called where a job starts: inside a forked work horse, write to the worker's horse files from now on."""
    global _work_horse
    if worker.is_horse:
        _work_horse = (os.getpid(), f"{os.getppid()}-horse")
