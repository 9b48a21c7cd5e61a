"""CPU time per completed sign-in: Gatehouse beside the typical Flask stack, against the same local provider.

    .venv/bin/python -m bench.signins              # or: make bench
    .venv/bin/python -m bench.signins --profile    # cProfile of Gatehouse's callback, in-process

Two servers run side by side on one redis-server and one development provider (oidc-provider-mock),
both under gunicorn with the repository's gunicorn.conf.py and two workers (bench/pages.py's `gunicorn`):

  G  Gatehouse (`app:create_app()`, GATEHOUSE_ENV=development, SQLite) plus one RQ worker
     (`flask --app app worker`) that persists the user and stores the audit event.
  T  bench/typical_signin_app.py: Authlib's authorize_redirect / authorize_access_token, Flask-Session,
     Flask-Login, the user upserted with SQLAlchemy into SQLite in the callback.

A sign-in is the whole redirect dance over plain HTTP (bench/browser.py: /login, the provider's form,
the callback), by a new browser each time, for a new subject each time, one after another. For G it is
complete only once the worker has persisted the user (the users table is polled); for T once the
callback has answered (it upserted the user before answering).

The figure is CPU time, user + sys from /proc, of each server's processes (gunicorn's master and
workers, G's RQ worker with its work horses and scheduler) and of Redis, read before and after each
block of BLOCK sign-ins and summed over the blocks. The blocks alternate G, T, G, T, … so a busy moment
of the shared machine slows both. The provider's CPU and this process's are not counted. Before G's
last reading the worker must have finished every job of the block (the audit events too).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import typical_signin_app
from bench.browser import Browser, sign_in
from bench.pages import (
    CLOCK_TICKS,
    ROOT,
    SECRET_KEY,
    Server,
    children,
    cpu_seconds,
    gunicorn,
    gunicorn_env,
    migrate,
    stat_fields,
)
from bench.runner import benchmark_folder
from devstack.processes import free_port, start_mock_provider, start_redis, stop, wait_for_port
from tests.support.stack import GENEROUS_RATE_LIMITS  # every sign-in comes from 127.0.0.1

SIGN_INS = 100
BLOCK = 10
WARM_UP = 3  # sign-ins per server before the first reading: JWKS and discovery fetched, templates compiled
PERSIST_TIMEOUT = 60.0
PROFILED_SIGN_INS = 200
# The callback's code: Gatehouse's own modules and the libraries it calls for a sign-in.
ATTRIBUTABLE = (
    rf"^{re.escape(str(ROOT))}/(?!\.venv/|bench/)"
    r"|/site-packages/(authlib|joserfc|requests|urllib3|rq|redis|msgspec|flask_limiter|limits|flask_session)/"
)


def tree_cpu(pid: int) -> float:
    """user+sys CPU seconds of a process, the children it has reaped, and its live descendants (likewise).

    RQ's worker keeps a scheduler process and a standing work horse (live: read directly) and forks a
    horse of its own for any other job (reaped: in its cutime); gunicorn's workers are live children
    of its master.
    """
    total = cpu_seconds(pid, reaped_children=True)
    for child in children(pid):
        with suppress(OSError):  # exiting right now: its master counts it next time
            total += tree_cpu(child)
    return total


@dataclass
class Deployment:
    """What bench/signins.py starts: Redis, the provider, G (with its worker) and T."""

    workdir: Path
    redis: subprocess.Popen[bytes]
    provider_url: str
    gatehouse_url: str
    gatehouse_master: int
    worker: subprocess.Popen[bytes]
    typical_url: str
    typical_master: int
    database: Path

    def gatehouse_cpu(self) -> dict[str, float]:
        """CPU seconds so far: G's web processes, its worker (horses and scheduler included), Redis."""
        return {
            "web": tree_cpu(self.gatehouse_master),
            "worker": tree_cpu(self.worker.pid),
            "redis": cpu_seconds(self.redis.pid),
        }

    def typical_cpu(self) -> dict[str, float]:
        """CPU seconds so far: T's web processes and Redis."""
        return {"web": tree_cpu(self.typical_master), "worker": 0.0, "redis": cpu_seconds(self.redis.pid)}


def settings(redis_port: int, provider_url: str, workdir: Path) -> dict[str, str]:
    """The environment both servers and G's worker run with (each reads what it knows)."""
    url = f"redis://127.0.0.1:{redis_port}/0"
    return {
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "REDIS_URL": url,
        "QUEUE_REDIS_URL": url,
        "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
        "TYPICAL_DATABASE_URL": f"sqlite:///{workdir / 'typical.db'}",
        "OIDC_ISSUER": provider_url,
        "OIDC_CLIENT_ID": "gatehouse-bench",
        "OIDC_CLIENT_SECRET": "gatehouse-bench-secret",
        **GENEROUS_RATE_LIMITS,
    }


@contextmanager
def deployment(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """Start Redis, the provider, G with its worker, and T; stop them all at the end, whatever happens."""
    with ExitStack() as running:
        redis_port, provider_port = free_port(), free_port()
        redis = start_redis(redis_port, data_dir=workdir)
        running.callback(stop, [redis])
        provider = start_mock_provider(provider_port)
        running.callback(stop, [provider])
        provider_url = f"http://127.0.0.1:{provider_port}"
        env = {**gunicorn_env(settings(redis_port, provider_url, workdir)), **(extra_env or {})}
        migrate(env)
        typical_signin_app.create_tables(env)
        worker = start_worker(env, workdir / "worker.log")
        running.callback(stop, [worker])
        gatehouse = Server("G", "Gatehouse", "app:create_app()", "")
        typical = Server("T", "typical stack", "bench.typical_signin_app:create_app()", "")
        g_process, g_url = running.enter_context(gunicorn(gatehouse, env, workdir / "G.log"))
        t_process, t_url = running.enter_context(gunicorn(typical, env, workdir / "T.log"))
        yield Deployment(
            workdir=workdir,
            redis=redis,
            provider_url=provider_url,
            gatehouse_url=g_url.rstrip("/"),
            gatehouse_master=g_process.pid,
            worker=worker,
            typical_url=t_url.rstrip("/"),
            typical_master=t_process.pid,
            database=workdir / "gatehouse.db",
        )


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """One `flask --app app worker`, as production runs it (its log to `log`)."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


class Persisted:
    """Reads Gatehouse's SQLite database: has the worker stored this user, and how many sign-in events?"""

    def __init__(self, database: Path):
        # Read-only and autocommit: a reader never holds a lock the worker's commit would wait for.
        self.connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)

    def user(self, subject: str) -> bool:
        """True once the users table holds `subject`."""
        found = self.connection.execute("SELECT 1 FROM users WHERE subject = ?", (subject,)).fetchone()
        return found is not None

    def sign_in_events(self) -> int:
        """Successful sign-in events stored so far."""
        query = "SELECT count(*) FROM audit_events WHERE kind = 'sign_in' AND outcome = 'success'"
        return int(self.connection.execute(query).fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = PERSIST_TIMEOUT) -> None:
    """Poll `condition` every 2 ms (a cheap read in this process) until it holds; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(0.002)


def gatehouse_sign_in(stack: Deployment, persisted: Persisted, subject: str) -> None:
    """One whole sign-in at G, complete once the worker has persisted the user."""
    browser = Browser()
    try:
        sign_in(browser, stack.gatehouse_url, subject)
    finally:
        browser.close()
    wait_for(lambda: persisted.user(subject), f"{subject} not persisted")


def typical_sign_in(stack: Deployment, subject: str) -> None:
    """One whole sign-in at T (its callback upserts the user before it answers)."""
    browser = Browser()
    try:
        sign_in(browser, stack.typical_url, subject)
    finally:
        browser.close()


def settled_worker(stack: Deployment, persisted: Persisted, events: int) -> None:
    """Wait until G's worker has stored `events` sign-in events and no short-lived work horse of its is left.

    Its long-lived children (the scheduler, the standing work horse: jobs/horse.py) are read live; a horse
    forked for one job lives milliseconds, and its CPU is counted once the worker has reaped it.
    """
    wait_for(lambda: persisted.sign_in_events() >= events, f"only {persisted.sign_in_events()} of {events} events")
    wait_for(
        lambda: children(stack.worker.pid) <= long_lived_children(stack.worker.pid, seconds=LONG_LIVED_SECONDS),
        "a short-lived work horse still running",
        timeout=10,
    )


# A child of the worker older than this is its scheduler or its standing horse, not a horse forked for one job.
LONG_LIVED_SECONDS = 2.0


def long_lived_children(pid: int, seconds: float) -> set[int]:
    """The children of `pid` that have run for more than `seconds`."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    found = set()
    for child in children(pid):
        with suppress(OSError):
            if uptime - int(stat_fields(child)[19]) / CLOCK_TICKS > seconds:
                found.add(child)
    return found


def run(workdir: Path) -> dict[str, Any]:
    """SIGN_INS sign-ins at each server, in alternating blocks; CPU per sign-in by part, and the ratio."""
    totals = {key: {"web": 0.0, "worker": 0.0, "redis": 0.0} for key in ("G", "T")}
    with deployment(workdir) as stack:
        persisted = Persisted(stack.database)
        try:
            for index in range(WARM_UP):
                gatehouse_sign_in(stack, persisted, f"warm-g-{index}")
                typical_sign_in(stack, f"warm-t-{index}")
            events = WARM_UP
            # The worker's scheduler is the child older than any work horse forked for one job can be.
            wait_for(
                lambda: bool(long_lived_children(stack.worker.pid, seconds=LONG_LIVED_SECONDS)),
                "no scheduler under the worker",
                timeout=20,
            )
            settled_worker(stack, persisted, events)
            for block in range(SIGN_INS // BLOCK):
                before = stack.gatehouse_cpu()
                for index in range(BLOCK):
                    gatehouse_sign_in(stack, persisted, f"g-{block}-{index}")
                events += BLOCK
                settled_worker(stack, persisted, events)
                add(totals["G"], before, stack.gatehouse_cpu())
                before = stack.typical_cpu()
                for index in range(BLOCK):
                    typical_sign_in(stack, f"t-{block}-{index}")
                add(totals["T"], before, stack.typical_cpu())
            worker_idle = idle_worker_cpu(stack)
        finally:
            persisted.close()
    return summarize(totals, worker_idle)


def add(total: dict[str, float], before: dict[str, float], after: dict[str, float]) -> None:
    """Add one block's CPU seconds, part by part."""
    for part in total:
        total[part] += after[part] - before[part]


def idle_worker_cpu(stack: Deployment, seconds: float = 5.0) -> float:
    """CPU ms per second of G's worker with nothing to do (heartbeats, maintenance): a share of every sign-in's
    worker figure that depends on how far apart sign-ins arrive, not on the sign-ins."""
    before = tree_cpu(stack.worker.pid)
    time.sleep(seconds)
    return (tree_cpu(stack.worker.pid) - before) / seconds * 1e3


def summarize(totals: dict[str, dict[str, float]], worker_idle_ms_per_s: float) -> dict[str, Any]:
    """CPU ms per sign-in by part, and Gatehouse ÷ typical."""
    per = {
        key: {part: round(seconds / SIGN_INS * 1e3, 2) for part, seconds in parts.items()}
        for key, parts in totals.items()
    }
    for parts in per.values():
        parts["web_and_redis"] = round(parts["web"] + parts["redis"], 2)
        parts["total"] = round(parts["web_and_redis"] + parts["worker"], 2)
    return {
        "sign_ins": SIGN_INS,
        "block": BLOCK,
        "ms_per_sign_in": per,
        "ratio_total": round(per["G"]["total"] / per["T"]["total"], 2),
        "ratio_web_and_redis": round(per["G"]["web_and_redis"] / per["T"]["total"], 2),
        "worker_idle_ms_per_second": round(worker_idle_ms_per_s, 2),
    }


def print_report(figures: dict[str, Any]) -> None:
    """The table, then the figures as one JSON line."""
    per = figures["ms_per_sign_in"]
    print(f"CPU ms per completed sign-in ({figures['sign_ins']} each, one after another, blocks of {figures['block']})")
    print(f"  {'':24}{'web':>8}{'Redis':>8}{'web+Redis':>11}{'worker':>8}{'total':>8}")
    for key, label in (("G", "Gatehouse (persisted)"), ("T", "typical stack")):
        row = per[key]
        print(
            f"  {key} {label:22}{row['web']:>8.2f}{row['redis']:>8.2f}{row['web_and_redis']:>11.2f}"
            f"{row['worker']:>8.2f}{row['total']:>8.2f}"
        )
    print(
        f"  G ÷ T: total {figures['ratio_total']:.2f}, web+Redis alone {figures['ratio_web_and_redis']:.2f}; "
        f"G's idle worker: {figures['worker_idle_ms_per_second']:.2f} ms of CPU per second"
    )
    print("\n" + json.dumps({"bench": "signins", **figures}, ensure_ascii=False))


# --profile: where the CPU of Gatehouse's callback goes.


def profile(workdir: Path) -> None:
    """cProfile PROFILED_SIGN_INS callbacks of Gatehouse in-process (test client) against a real provider and Redis.

    The browser's part at the provider is done over HTTP; only `GET /auth/callback` is profiled. The
    callback's wait on the provider (token endpoint, UserInfo) shows as socket reads: read the
    tottime of Python code for where CPU goes. No worker runs; the jobs stay queued.
    """
    from app import create_app

    redis_port, provider_port = free_port(), free_port()
    redis = start_redis(redis_port, data_dir=workdir)
    provider = start_mock_provider(provider_port)
    try:
        wait_for_port(provider_port)
        env = settings(redis_port, f"http://127.0.0.1:{provider_port}", workdir)
        migrate({**gunicorn_env(env)})
        app = create_app(env)
        for path in [callback_path(app, f"warm-{index}") for index in range(5)]:
            finish(app, path)
        started = time.process_time()
        unprofiled = [callback_path(app, f"plain-{index}") for index in range(PROFILED_SIGN_INS)]
        # Includes this process's POST to the provider (bench/browser.py), a small part.
        login_ms = (time.process_time() - started) / PROFILED_SIGN_INS * 1e3
        started = time.process_time()
        for path in unprofiled:
            finish(app, path)
        callback_ms = (time.process_time() - started) / PROFILED_SIGN_INS * 1e3
        paths = [callback_path(app, f"profiled-{index}") for index in range(PROFILED_SIGN_INS)]
        # CPU time, not wall time: the callback waits on the provider (token endpoint, UserInfo), and
        # that wait is the provider's cost, not Gatehouse's.
        profiler = cProfile.Profile(time.process_time)
        for path in paths:
            profiler.runcall(finish, app, path)
    finally:
        stop([provider, redis])
    print(f"In-process (test client), ms of CPU each without the profiler, {PROFILED_SIGN_INS} sign-ins:")
    print(f"  GET /login plus the POST to the provider: {login_ms:.2f}; GET /auth/callback: {callback_ms:.2f}")
    if os.environ.get("BENCH_PROFILE_OUT"):
        profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])  # for pstats or snakeviz, to look further
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    print("Top 45 by cumulative CPU time (process_time), all code:")
    stats.print_stats(45)
    print("Top 40 by cumulative CPU time, Gatehouse and extensions only:")
    stats.print_stats(ATTRIBUTABLE, 40)
    print("Top 30 by own CPU time:")
    stats.sort_stats("tottime").print_stats(30)


def callback_path(app: Any, subject: str) -> tuple[Any, str]:
    """A browser (test client) that started a sign-in and passed the provider's form: its callback path."""
    browser = app.test_client()
    start = browser.get("/login?next=/", headers={"User-Agent": "gatehouse-bench"})
    if start.status_code != 302:
        raise RuntimeError(f"/login answered {start.status_code}")
    provider = Browser()
    try:
        consent = provider.request("POST", start.headers["Location"], form={"sub": subject})
    finally:
        provider.close()
    location = urlsplit(consent.location)
    return browser, f"{location.path}?{location.query}"


def finish(app: Any, started: tuple[Any, str]) -> None:
    """The callback a browser's sign-in ends with; anything but a redirect home means the profile is wrong."""
    browser, path = started
    response = browser.get(path, headers={"User-Agent": "gatehouse-bench"})
    if response.status_code != 302 or response.headers["Location"] != "/":
        raise RuntimeError(f"the callback answered {response.status_code}: {response.get_data()[:200]!r}")


def main() -> None:
    """Run the benchmark (or, with --profile, the profile) and print its figures."""
    with benchmark_folder("gatehouse-bench-signins-") as folder:
        if "--profile" in sys.argv[1:]:
            profile(folder)
        else:
            print_report(run(folder))


if __name__ == "__main__":
    main()
