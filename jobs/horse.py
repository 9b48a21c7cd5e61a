"""A standing work horse: one forked process that runs batch after batch for its worker.

RQ forks a new work horse for every job, and jobs/batch.py forked one for every batch. When
sign-ins arrive one at a time, every batch holds one or two jobs, and the fork, the new
database connection and the cold statement caches cost twenty times the work itself. A standing
horse is forked once and then kept: it keeps its database connections and its compiled
statements, and the worker hands it each batch's (job name, argument) pairs over a pipe.

What does not change is who may lose what:
- the horse is still a process of its own (in its own process group, as RQ's horse is): killed
  mid-batch, its worker sees the pipe close at once and fails (so retries) every job of the
  batch it left started, then forks a new horse for the next batch;
- the worker still does every piece of RQ's bookkeeping (marks the jobs started, keeps their
  heartbeats, marks them finished), so a worker killed with its horse leaves its jobs started,
  for the abandoned-job cleanup of any worker;
- the horse never touches a connection of its worker: it drops the pools it inherited through
  fork() before its first batch (`ready`), and is the only user of the ones it opens after.

A horse whose worker died without closing the pipe (SIGKILL) notices within WATCH_SECONDS
that its parent changed and exits; a batch it was running then is left to the cleanup, as a
forked horse's would be.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

log = logging.getLogger(__name__)

# How often an idle horse checks that its worker is still alive (an os.getppid() call).
WATCH_SECONDS = 1.0

# What the horse answers for a batch: (kind, the error's type name, its traceback). The kind is "ok"
# when every record is stored (with "" and ""), "outage" when the database or a Redis is away or the
# batch timed out, "error" for any other error.
Outcome = tuple[str, str, str]


class HorseDied(Exception):
    """The standing horse ended (killed, or crashed) before it answered; carries waitpid's status."""

    def __init__(self, status: int | None):
        super().__init__(f"the standing work horse ended; waitpid returned {status}")
        self.status = status


class StandingHorse:
    """The worker's side of one standing horse: fork it, hand it batches, notice when it dies."""

    def __init__(self, ready: Callable[[], None], run: Callable[[Any], Outcome]):
        # `ready` runs once in the new horse (drop inherited pools, mark the process a horse);
        # `run` runs each batch there and classifies its outcome.
        self.ready = ready
        self.run = run
        self.pid = 0
        self._connection: Connection | None = None

    @property
    def alive(self) -> bool:
        """True while a horse is forked and has not been reaped."""
        return self.pid != 0

    def start(self) -> Connection:
        """Fork the horse; returns the worker's end of its pipe."""
        ours, theirs = Pipe(duplex=True)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the horse
            ours.close()
            os.setpgrp()  # signals to the worker's process group (a terminal's Ctrl-C) do not reach it
            self._serve(theirs, parent)
            os._exit(0)  # never reached: _serve exits
        theirs.close()
        self.pid, self._connection = pid, ours
        return ours

    def send(self, message: Any) -> None:
        """Hand the horse a batch (forking one first if there is none); HorseDied if it is gone."""
        if self.alive and self._ended_while_idle():
            log.warning("standing work horse %s ended between batches; forking a new one", self.pid)
        connection = self._connection if self.alive and self._connection is not None else self.start()
        try:
            connection.send(message)
        except OSError:
            raise HorseDied(self.reap()) from None

    def wait(self, seconds: float | None) -> Outcome | None:
        """The horse's answer, or None if it has none after `seconds`; HorseDied if it ended meanwhile."""
        connection = self._connection
        if connection is None:
            raise HorseDied(self.reap())
        try:
            if not connection.poll(seconds):
                return None
            outcome: Outcome = connection.recv()
            return outcome
        except (EOFError, OSError):
            raise HorseDied(self.reap()) from None

    def _ended_while_idle(self) -> bool:
        """True (and the horse reaped) if it ended since its last batch: killed while it had nothing to do."""
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid == 0:
            return False
        self.pid = 0
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return True

    def kill(self) -> int | None:
        """SIGKILL the horse (it outlived its batch's time) and reap it."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.reap()

    def stop(self) -> int | None:
        """Let the horse go and reap it: it ends its batch, if it has one, then reads None and exits.

        An explicit None, not only the pipe's end: a process forked from the worker since (RQ's
        scheduler, a horse of its own) holds a copy of the worker's end, so the pipe stays open.
        """
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
        return self.reap()

    def reap(self) -> int | None:
        """Wait for the horse's end; returns its waitpid status (None if there was no horse)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        pid, self.pid = self.pid, 0
        if not pid:
            return None
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except ChildProcessError:
                return None
            except OSError as error:  # EINTR: a signal (SIGTERM asks for a warm shutdown); wait on
                if error.errno != errno.EINTR:
                    raise

    # The horse's side.

    def _serve(self, connection: Connection, parent: int) -> None:
        """The horse's loop: run each batch it is handed, answer, and exit once its worker is gone."""
        try:
            # Ctrl-C in a terminal is the worker's to handle; SIGTERM keeps its default (end now).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.ready()
            while True:
                if not connection.poll(WATCH_SECONDS):
                    if os.getppid() != parent:
                        break  # the worker died without closing the pipe
                    continue
                message = connection.recv()
                if message is None:
                    break  # let go by the worker
                connection.send(self.run(message))
        except (EOFError, OSError):
            pass  # the worker closed the pipe: it stops or starts a new horse
        except BaseException:
            log.exception("standing work horse failed")
            os._exit(1)
        os._exit(0)


def outcome_of(run: Callable[[], None], outages: tuple[type[BaseException], ...]) -> Outcome:
    """Run one batch in the horse and say how it went (an error's traceback, never the error, goes back)."""
    try:
        run()
    except outages as error:
        return "outage", type(error).__name__, traceback.format_exc()
    except Exception as error:
        return "error", type(error).__name__, traceback.format_exc()
    return "ok", "", ""
