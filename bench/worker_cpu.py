"""The worker's CPU per sign-in: one sign-in at a time with the worker idle in between, and a burst.

    .venv/bin/python -m bench.worker_cpu       # or: make bench (after bench.persistence)

Issue 21 asks for the worker's share of a sign-in's cost at any arrival rate. For SQLite and
PostgreSQL (the tests' throwaway cluster, tests/support/postgres.py), the benchmark starts its
own deployment through tests/support/stack.py (redis-server, migrations, no web process) and one
long-running `flask --app app worker` with the production worker timings, then:

1. Idle: the worker's CPU over IDLE_SECONDS with nothing queued (its wake-ups, heartbeats and
   maintenance runs), as ms per second.
2. One at a time: ONE_AT_A_TIME sign-ins, each queued the way the callback queues it (the user's
   persistence through `accounts.persistence.enqueue_persistence` and its audit event through
   `audit.events.record`, inside a request context and a `jobs.queues.queued_together` block), and
   each waited for until both its jobs finished before the next is queued. The same again with the
   two jobs queued one after the other, as the callback did before (back to back here, with none of
   the callback's work between them).
3. Burst: BURST sign-ins queued as fast as this process can, with the worker running, until
   every job finished.

CPU is user + sys time from /proc of the worker process and every process under it (its
scheduler, its work horses), those reaped included (the worker's cutime/cstime), read before
and after each phase. "Net" subtracts what the worker would have spent idle over the phase's
wall time. Every job must finish and every row exist, or the benchmark fails. It prints a table,
then the figures as one JSON line. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from accounts.persistence import enqueue_persistence
from audit import events as audit
from bench.persistence import SETTINGS, sign_in_record
from extensions import db
from jobs.queues import job_queue, queued_together, waiting_count
from models.audit import AuditEvent
from models.user import User
from tests.reliability.helpers import start_reliability_stack
from tests.support.polling import wait_until
from tests.support.postgres import PostgresCluster, start_cluster
from tests.support.stack import Stack

ONE_AT_A_TIME = 200
BURST = 2_000
IDLE_SECONDS = 20.0
# Seconds between one sign-in's jobs ending and the next sign-in.
PAUSE = 0.02
ROUNDS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: fields start after the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """Every living process under `pid` (its children, theirs, ...)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                found.append(int(child))
                pending.append(int(child))
    return found


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + sys) of `pid` itself, and of every process under it, living or reaped (cutime/cstime)."""
    own, under = 0, 0
    for member in [pid, *descendants(pid)]:
        try:
            fields = _stat_fields(member)
        except OSError:
            continue  # ended between the listing and the read: its parent's cutime counts it next time
        # utime, stime, cutime, cstime are fields 14-17 of stat (12-15 after the pid and name).
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        if member == pid:
            own += utime + stime
        else:
            under += utime + stime
        under += cutime + cstime
    return own / CLOCK_TICKS, under / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User + sys CPU of `pid` and every process under it, living or reaped."""
    return sum(tree_cpu(pid))


def queue_sign_in(index: int, prefix: str, together: bool = True) -> None:
    """Queue one sign-in's jobs as the callback does: its user's persistence and its audit event, together.

    `together=False` queues them one after the other, as the callback did before `queued_together`.
    """
    record = sign_in_record(index, prefix)
    with queued_together() if together else nullcontext():
        enqueue_persistence(record)
        audit.record("sign_in", "success", issuer=record["issuer"], subject=record["subject"])


def stored(prefix: str) -> tuple[int, int]:
    """How many users and audit events of this prefix the database holds."""
    users = db.session.execute(
        select(func.count()).select_from(User).where(User.subject.startswith(f"{prefix}-"))
    ).scalar_one()
    events = db.session.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.subject.startswith(f"{prefix}-"))
    ).scalar_one()
    db.session.remove()
    return int(users), int(events)


def worker_done(count: int, prefix: str) -> bool:
    """True once `count` sign-ins of this prefix are stored and no job waits or runs (none may fail)."""
    queue = job_queue()
    if FailedJobRegistry(queue=queue).get_job_count(cleanup=False):
        raise RuntimeError("a job failed")
    if stored(prefix) != (count, count):
        return False
    return waiting_count(queue) == 0 and StartedJobRegistry(queue=queue).get_job_count(cleanup=False) == 0


def one_at_a_time(
    stack: Stack, pid: int, prefix: str, idle_per_second: float, together: bool = True
) -> dict[str, float]:
    """Sign-ins one after the other, each persisted (and the worker idle again) before the next is queued."""
    with stack.context() as app, app.test_request_context("/", headers={"User-Agent": "bench"}):
        started_cpu, started = tree_cpu(pid), time.perf_counter()
        for index in range(ONE_AT_A_TIME):
            queue_sign_in(index, prefix, together)
            wait_until(partial(worker_done, index + 1, prefix), timeout=30, interval=0.003, what="a sign-in")
            time.sleep(PAUSE)  # the worker is back waiting for a job, as between two sign-ins of a quiet hour
        return _per_sign_in(pid, started_cpu, started, ONE_AT_A_TIME, idle_per_second)


def burst(stack: Stack, pid: int, prefix: str, idle_per_second: float) -> dict[str, float]:
    """BURST sign-ins queued at once, the worker running throughout."""
    with stack.context() as app, app.test_request_context("/", headers={"User-Agent": "bench"}):
        started_cpu, started = tree_cpu(pid), time.perf_counter()
        for index in range(BURST):
            queue_sign_in(index, prefix)
        wait_until(lambda: worker_done(BURST, prefix), timeout=600, interval=0.05, what="the burst's jobs")
        return _per_sign_in(pid, started_cpu, started, BURST, idle_per_second)


def _per_sign_in(
    pid: int, started_cpu: tuple[float, float], started: float, count: int, idle_per_second: float
) -> dict[str, float]:
    ended_cpu, wall = tree_cpu(pid), time.perf_counter() - started
    own, under = ended_cpu[0] - started_cpu[0], ended_cpu[1] - started_cpu[1]
    return {
        "cpu_ms": (own + under) * 1000 / count,
        "net_cpu_ms": (own + under - idle_per_second * wall) * 1000 / count,
        "worker_process_cpu_ms": own * 1000 / count,
        "children_cpu_ms": under * 1000 / count,
        "per_second": count / wall,
    }


def idle_cpu(pid: int) -> float:
    """The idle worker's CPU seconds per second."""
    started_cpu, started = tree_cpu_seconds(pid), time.perf_counter()
    time.sleep(IDLE_SECONDS)
    return (tree_cpu_seconds(pid) - started_cpu) / (time.perf_counter() - started)


def measure(workdir: Path, database_url: str | None, env: dict[str, str]) -> dict[str, Any]:
    """Every figure for one database and worker environment."""
    stack = start_reliability_stack(workdir, database_url=database_url, workers=0, settings=SETTINGS)
    try:
        worker = stack.start_worker("bench-worker", env=env)
        stack.wait_for_idle_workers(1)
        pid = worker.pid
        with stack.context() as app, app.test_request_context("/", headers={"User-Agent": "bench"}):
            queue_sign_in(0, "warm")
            wait_until(lambda: worker_done(1, "warm"), timeout=30, what="the warm-up sign-in")
        idle = idle_cpu(pid)
        ones, apart, bursts = [], [], []
        for round_ in range(ROUNDS):
            ones.append(one_at_a_time(stack, pid, f"one{round_}", idle))
            apart.append(one_at_a_time(stack, pid, f"apart{round_}", idle, together=False))
            bursts.append(burst(stack, pid, f"burst{round_}", idle))
    finally:
        stack.stop()
    figures: dict[str, Any] = {"idle_cpu_ms_per_second": idle * 1000}
    for kind, runs in (("one_at_a_time", ones), ("one_at_a_time_apart", apart), ("burst", bursts)):
        for figure in ("cpu_ms", "net_cpu_ms", "per_second", "worker_process_cpu_ms", "children_cpu_ms"):
            figures[f"{kind}_{figure}"] = statistics.median(run[figure] for run in runs)
        figures[f"{kind}_runs"] = [run["net_cpu_ms"] for run in runs]
    return figures


def run(databases: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Each database in a fresh deployment."""
    figures: dict[str, Any] = {"one_at_a_time": ONE_AT_A_TIME, "burst": BURST, "env": env}
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-worker-") as folder:
        if "sqlite" in databases:
            figures["sqlite"] = measure(Path(folder) / "sqlite", None, env)
        if "postgresql" in databases:
            cluster: PostgresCluster = start_cluster()
            try:
                figures["postgresql"] = measure(Path(folder) / "postgresql", cluster.create_database("bench"), env)
            finally:
                cluster.destroy()
    return figures


def print_report(figures: dict[str, Any]) -> None:
    """The table, then the JSON line."""
    rows = [
        ("idle worker, CPU ms per second", "idle_cpu_ms_per_second", "{:.1f}"),
        (f"one at a time ({ONE_AT_A_TIME}), worker CPU ms per sign-in", "one_at_a_time_cpu_ms", "{:.2f}"),
        ("  net of idle", "one_at_a_time_net_cpu_ms", "{:.2f}"),
        ("  the worker process itself", "one_at_a_time_worker_process_cpu_ms", "{:.2f}"),
        ("  the processes under it (work horses, scheduler)", "one_at_a_time_children_cpu_ms", "{:.2f}"),
        ("  sign-ins per second", "one_at_a_time_per_second", "{:.0f}"),
        ("one at a time, its two jobs queued apart (before)", "one_at_a_time_apart_cpu_ms", "{:.2f}"),
        ("  net of idle", "one_at_a_time_apart_net_cpu_ms", "{:.2f}"),
        (f"burst ({BURST:,}), worker CPU ms per sign-in", "burst_cpu_ms", "{:.2f}"),
        ("  net of idle", "burst_net_cpu_ms", "{:.2f}"),
        ("  the worker process itself", "burst_worker_process_cpu_ms", "{:.2f}"),
        ("  the processes under it (work horses, scheduler)", "burst_children_cpu_ms", "{:.2f}"),
        ("  sign-ins per second", "burst_per_second", "{:.0f}"),
    ]
    databases = [name for name in ("sqlite", "postgresql") if name in figures]
    print(f"{'':<56}" + "".join(f"{name:>12}" for name in databases))
    for label, key, form in rows:
        print(f"{label:<56}" + "".join(f"{form.format(figures[name][key]):>12}" for name in databases))
    print(json.dumps({"bench": "worker_cpu", **figures}, sort_keys=True))


def main() -> None:
    """Measure and print (`--sqlite` or `--postgresql` for one database only)."""
    chosen = [arg.removeprefix("--") for arg in sys.argv[1:] if arg in ("--sqlite", "--postgresql")]
    print_report(run(chosen or ["sqlite", "postgresql"], {}))


if __name__ == "__main__":
    main()
