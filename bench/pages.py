"""CPU time per signed-in page: Gatehouse beside plain Flask and a typical Flask stack.

    .venv/bin/python -m bench.pages              # or: make bench
    .venv/bin/python -m bench.pages --profile    # where Gatehouse's time goes, in-process

Requests per second would mostly measure what else the shared machine is doing, so the figure
here is CPU time per request: the user+sys CPU that the web server's processes (gunicorn's
master and all its workers, from /proc/<pid>/stat) and the Redis server used during a load
run, divided by the requests served. Servers, each started in turn on a free port with the
same load (wrk, or a Python client if wrk is missing):

  A  Gatehouse (`app:create_app()`, GATEHOUSE_ENV=development) under gunicorn.conf.py,
     GET / with a signed-in session planted through tests/support/session_records.plant_session.
  B  bench/plain_app.py: plain Flask rendering the same templates to the same bytes (checked),
     with no session, auth, CSRF signing, rate limiter or security headers.
  C  bench/typical_app.py: Flask + Flask-Login + Flask-Session (Redis) + Flask-WTF CSRFProtect.
  F  B plus what no code change can take out of A (BENCH_FLOOR=1): Gatehouse's one Redis round
     trip per page (read.lua on the same planted session) and its security headers. A / F is
     what Gatehouse's own code costs on top of that floor; F / B is the floor itself.
  D  A under gunicorn's own defaults (no -c, started from a folder without gunicorn.conf.py).
  E  A under gunicorn.conf.py with GUNICORN_MAX_REQUESTS=0 (workers never recycled).

Beside CPU per request it gives worker restarts during the measured run (gunicorn.conf.py
recycles a worker after about 2,000 requests) and the CPU a fresh worker has used by the time
it answers, which each restart spends again.

Each runs twice, interleaved (A B C D E F A B C D E F), so a busy moment of the machine slows them
alike; the table gives the median of the two runs. Every process it starts is stopped at the
end, whatever happens.
"""

from __future__ import annotations

import cProfile
import html
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from flask import Flask

from app import create_app
from bench import typical_app
from bench.plain_app import READER
from bench.runner import benchmark_folder
from devstack.processes import free_port, start_redis, stop, wait_for_port
from tests.support.redis_monitor import recording
from tests.support.session_records import plant_session

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://login.example.com/realms/staff"  # never contacted: a signed-in GET / does not call it
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"  # noqa: S105 (a throwaway app's)
USER_AGENT = "gatehouse-bench"
# The load: wrk with 2 threads and 8 connections (keep-alive), a warm-up that is not measured,
# then the measured run. 6 servers x 2 rounds x ~12 s stays around 3 minutes.
THREADS, CONNECTIONS = 2, 8
WARM_UP_SECONDS, MEASURED_SECONDS = 2, 8
ROUNDS = 2
ROUND_TRIP_VIEWS = 20
PROFILED_REQUESTS = 2_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    """One web server to measure: what gunicorn serves, how, and which cookie a signed-in browser sends."""

    key: str
    label: str
    target: str
    cookie: str
    # False: gunicorn's own defaults, started in `cwd`, a folder without gunicorn.conf.py.
    configured: bool = True
    cwd: Path = ROOT
    # Settings on top of the bench's environment (gunicorn.conf.py reads GUNICORN_*).
    env: dict[str, str] = field(default_factory=dict)


# CPU time, from /proc.


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat split after the command name (which may hold spaces): field 3 is index 0."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """user+sys CPU of a process (all its threads); with the children it has reaped if asked.

    A gunicorn worker recycled during the run (max_requests) is gone from /proc, but its
    whole CPU time is in the master's cutime+cstime once the master has reaped it.
    """
    fields = stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (gunicorn's workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):
                if int(stat_fields(int(entry.name))[1]) == pid:
                    found.add(int(entry.name))
    return found


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds used so far by a gunicorn (master, reaped and live workers) and by Redis."""

    web: float
    redis: float
    workers: frozenset[int]

    @classmethod
    def take(cls, master: int, *redis: int) -> CpuReading:
        """Read them now; `redis` is every redis-server process to count (one, or a whole cluster's)."""
        workers = children(master)
        web = cpu_seconds(master, reaped_children=True)
        for worker in workers:
            with suppress(OSError):  # a worker that exits right now is counted by its master next time
                web += cpu_seconds(worker)
        return cls(web, sum(cpu_seconds(pid) for pid in redis), frozenset(workers))


# Starting and stopping gunicorn.


@contextmanager
def gunicorn(server: Server, env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """The server under gunicorn with 2 workers on a free port, for the block; stopped afterwards, always.

    Its own process group, so that if the master does not stop in time its workers are killed with it.
    Its error log (and the app's) goes to `log`, shown if the block fails.
    """
    port = free_port()
    env = {**env, **server.env}
    if server.configured:
        args = ["-c", "gunicorn.conf.py"]
        env = {**env, "WEB_CONCURRENCY": "2", "GUNICORN_BIND": f"127.0.0.1:{port}"}
    else:
        # Defaults: one sync worker process per -w (no threads), no access log, no max_requests.
        # --no-control-socket only so that it cannot clash with other gunicorns on the machine.
        args = ["-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket"]
        env = {**env, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gunicorn", *args, server.target]
    with log.open("ab") as errors:
        process = subprocess.Popen(  # noqa: S603 (our own fixed command line)
            command,
            cwd=server.cwd,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log, as production would write it, thrown away
            stderr=errors,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process=process, timeout=30)
        yield process, f"http://127.0.0.1:{port}/"
    except BaseException:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print(f"--- {server.key} ({server.label}): the end of gunicorn's log", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        stop([process])
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # any worker the master left behind


def fetch(url: str, cookie: str) -> tuple[int, str]:
    """GET `url` as the signed-in browser: status and body."""
    # S310: the URL is always http://127.0.0.1:<port>/ of a server the bench started.
    request = urllib.request.Request(url, headers={"Cookie": cookie, "User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def signed_in_page(url: str, cookie: str, process: subprocess.Popen) -> str:
    """The page, once both workers answer it with a 200 showing the reader's name (else the bench is wrong)."""
    deadline = time.monotonic() + 30
    status, body = 0, ""
    while time.monotonic() < deadline and process.poll() is None:
        with suppress(OSError):
            status, body = fetch(url, cookie)
            # Several in a row, so the second worker has loaded the app too.
            if status == 200 and all(fetch(url, cookie)[0] == 200 for _ in range(10)):
                break
        time.sleep(0.1)
    if status != 200 or html.escape(READER.display_name) not in body:
        raise RuntimeError(f"GET {url} answered {status} without {READER.display_name!r}: {body[:300]!r}")
    return body


# The load.


def load(url: str, cookie: str, seconds: int) -> int:
    """GET `url` for `seconds` over CONNECTIONS keep-alive connections; returns how many requests got a 200."""
    if shutil.which("wrk"):
        return wrk(url, cookie, seconds)
    return python_load(url, cookie, seconds)


# wrk's own counters as JSON, so nothing depends on the layout of its report.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk(url: str, cookie: str, seconds: int) -> int:
    """The load through wrk; any failed request stops the bench (it would not be measuring the page)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_REPORT)
        script.flush()
        command = wrk_command(url, seconds, script.name, ["-H", f"Cookie: {cookie}"])
        finished = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30)  # noqa: S603
    return wrk_served(finished.stdout, url)


def wrk_command(url: str, seconds: int, script: str, headers: list[str]) -> list[str]:
    """wrk's command line: THREADS threads over CONNECTIONS connections for `seconds`, the Lua `script`
    (ending with WRK_REPORT), the `headers` (-H options) and the User-Agent."""
    # --timeout: a request waiting on a busy shared machine is slow, not failed (default 2 s).
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", script]
    return [*command, *headers, "-H", f"User-Agent: {USER_AGENT}", url]


def wrk_served(output: str, url: str) -> int:
    """The requests wrk served, from WRK_REPORT's line at the end of its `output`; any failed request raises."""
    counts = json.loads(output.strip().splitlines()[-1])
    failed = {name: count for name, count in counts.items() if name != "requests" and count}
    # Gunicorn's sync worker closes each connection after its response; wrk counts the close
    # of an idle connection as a read error, though every request was answered.
    failed.pop("read", None)
    if failed:
        raise RuntimeError(f"wrk against {url}: failed requests {failed}")
    return int(counts["requests"])


def python_load(url: str, cookie: str, seconds: int) -> int:
    """A fallback for machines without wrk: CONNECTIONS threads, each a keep-alive connection."""
    address = url.removeprefix("http://").rstrip("/")
    deadline = time.monotonic() + seconds
    served = [0] * CONNECTIONS

    def client(slot: int) -> None:
        connection = HTTPConnection(address, timeout=10)
        while time.monotonic() < deadline:
            connection.request("GET", "/", headers={"Cookie": cookie, "User-Agent": USER_AGENT})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url} answered {response.status}")
            served[slot] += 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = HTTPConnection(address, timeout=10)
        connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(served)


# One measured run.


@dataclass(frozen=True)
class Run:
    """One load run of one server: requests served and CPU microseconds per request."""

    requests: int
    web_us: float
    redis_us: float
    worker_restarts: int
    worker_boot_ms: float

    @property
    def total_us(self) -> float:
        return self.web_us + self.redis_us


@contextmanager
def watching_workers(master: int) -> Iterator[set[int]]:
    """Every worker the master had during the block (polled every 0.1 s: a worker lives far longer).

    Comparing the workers before and after alone would miss one born and recycled in between.
    """
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            seen.update(children(master))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def worker_boot_ms(master: int) -> float:
    """CPU a fresh worker has used once it answers: mostly building the app, what each recycling costs again.

    Read when the workers have just served their first few pages (signed_in_page).
    """
    return round(statistics.median(cpu_seconds(worker) for worker in children(master)) * 1e3)


def measure(process: subprocess.Popen, url: str, cookie: str, redis_pid: int, boot_ms: float) -> Run:
    """Warm the server up (not measured), then load it MEASURED_SECONDS with CPU readings either side."""
    load(url, cookie, WARM_UP_SECONDS)
    return measured(process.pid, [redis_pid], boot_ms, lambda: load(url, cookie, MEASURED_SECONDS))


def measured(master: int, redis_pids: Sequence[int], boot_ms: float, run_load: Callable[[], int]) -> Run:
    """One load run (`run_load`, which returns the requests served) with CPU readings either side: of the
    gunicorn whose master is `master`, and of every redis-server in `redis_pids`."""
    before = CpuReading.take(master, *redis_pids)
    with watching_workers(master) as workers:
        served = run_load()
    after = CpuReading.take(master, *redis_pids)
    return Run(
        requests=served,
        web_us=round((after.web - before.web) / served * 1e6, 1),
        redis_us=round((after.redis - before.redis) / served * 1e6, 1),
        worker_restarts=len((workers | after.workers) - before.workers),
        worker_boot_ms=boot_ms,
    )


def round_trips(url: str, cookie: str, redis_port: int) -> float:
    """Round trips to Redis per page view, over ROUND_TRIP_VIEWS views (MONITOR, handshakes aside)."""
    with recording(redis_port) as recorded:
        for _ in range(ROUND_TRIP_VIEWS):
            fetch(url, cookie)
    return len(recorded.sent) / ROUND_TRIP_VIEWS


# Setting it all up.


def gatehouse_settings(redis_port: int, workdir: Path) -> dict[str, str]:
    """Gatehouse's environment for the gunicorn servers, and the overrides of the in-process app."""
    url = f"redis://127.0.0.1:{redis_port}/0"
    return {
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "REDIS_URL": url,
        "QUEUE_REDIS_URL": url,
        "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
        "OIDC_ISSUER": ISSUER,
        "OIDC_CLIENT_ID": "gatehouse-bench",
        "OIDC_CLIENT_SECRET": "gatehouse-bench-secret",
    }


def gunicorn_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a gunicorn server with these settings (its access log on, to stdout: thrown away)."""
    return {**os.environ, **settings, "GUNICORN_ACCESS_LOG": "-"}


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade` with this environment: the database the servers' settings name."""
    flask = [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"]
    subprocess.run(flask, cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)  # noqa: S603


def plant_reader(app: Flask) -> str:
    """The reader signed in to Gatehouse (no provider involved); returns the cookie value."""
    profile = {"display_name": READER.display_name, "locale": READER.locale, "timezone": READER.timezone}
    return plant_session(app, ISSUER, READER.subject, {**profile, "version": 0})


def servers(gatehouse_cookie: str, typical_cookie: str, defaults_folder: Path) -> list[Server]:
    """A to F, in the order each round runs them."""
    never_recycled = {"GUNICORN_MAX_REQUESTS": "0"}
    floor = {"BENCH_FLOOR": "1"}
    return [
        Server("A", "Gatehouse, gunicorn.conf.py", "app:create_app()", gatehouse_cookie),
        # B ignores cookies; it gets Gatehouse's so that the requests are the same bytes.
        Server("B", "plain Flask, same bytes", "bench.plain_app:create_app()", gatehouse_cookie),
        Server("C", "Flask-Login+Session+WTF", "bench.typical_app:create_app()", typical_cookie),
        Server("D", "Gatehouse, gunicorn defaults", "app:create_app()", gatehouse_cookie, False, defaults_folder),
        # gunicorn.conf.py recycles each worker after about 2,000 requests; a new worker builds the
        # app again (about 0.6 s of CPU: the boot column). E is A without that, to tell its cost apart.
        Server("E", "Gatehouse, conf, max_requests=0", "app:create_app()", gatehouse_cookie, env=never_recycled),
        Server("F", "plain + 1 Redis trip + headers", "bench.plain_app:create_app()", gatehouse_cookie, env=floor),
    ]


def run(workdir: Path) -> dict[str, Any]:
    """Every server twice, interleaved; the medians and ratios."""
    redis_port = free_port()
    redis = start_redis(redis_port, data_dir=workdir)
    try:
        settings = gatehouse_settings(redis_port, workdir)
        env = gunicorn_env(settings)
        migrate(env)
        gatehouse = create_app(settings)  # in-process, the same settings: to plant the session
        gatehouse_cookie = f"{gatehouse.config['SESSION_COOKIE_NAME']}={plant_reader(gatehouse)}"
        typical = typical_app.create_app(settings)
        typical_sid = typical_app.plant_session(typical, READER, {"User-Agent": USER_AGENT})
        typical_cookie = f"{typical.config['SESSION_COOKIE_NAME']}={typical_sid}"
        defaults_folder = workdir / "gunicorn-defaults"  # no gunicorn.conf.py here
        defaults_folder.mkdir()
        lineup = servers(gatehouse_cookie, typical_cookie, defaults_folder)
        runs: dict[str, list[Run]] = {}
        trips: dict[str, float] = {}
        gatehouse_body = ""
        for _ in range(ROUNDS):
            for server in lineup:
                server_env = {**env, "BENCH_CSRF_TOKEN": csrf_token(gatehouse_body)}
                with gunicorn(server, server_env, workdir / f"{server.key}.log") as (process, url):
                    body = signed_in_page(url, server.cookie, process)
                    boot_ms = worker_boot_ms(process.pid)
                    if server.key == "A":
                        gatehouse_body = body
                    elif server.key in ("B", "F") and body != gatehouse_body:
                        raise RuntimeError("plain_app.py does not serve the bytes Gatehouse served")
                    if server.key in ("A", "C", "F") and server.key not in trips:
                        trips[server.key] = round_trips(url, server.cookie, redis_port)
                    runs.setdefault(server.key, []).append(measure(process, url, server.cookie, redis.pid, boot_ms))
    finally:
        stop([redis])
    return summarize(lineup, runs, trips, page_bytes=len(gatehouse_body.encode()))


def csrf_token(page: str) -> str:
    """The CSRF token in the sign-out form of a page Gatehouse served ("" before the first)."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', page)
    return found.group(1) if found else ""


def summarize(lineup: list[Server], runs: dict[str, list[Run]], trips: dict[str, float], page_bytes: int) -> dict:
    """Per server the median of its runs' figures; ratios of CPU per request (A/B, C/B, A/C, D/A, E/A, F/B, A/F)."""
    per_server = {}
    for server in lineup:
        taken = runs[server.key]
        per_server[server.key] = {
            "label": server.label,
            "requests": [run.requests for run in taken],
            "web_us": round(statistics.median(run.web_us for run in taken), 1),
            "redis_us": round(statistics.median(run.redis_us for run in taken), 1),
            "total_us": round(statistics.median(run.total_us for run in taken), 1),
            "total_us_each_run": [round(run.total_us, 1) for run in taken],
            "worker_restarts": [run.worker_restarts for run in taken],
            "worker_boot_ms": statistics.median(run.worker_boot_ms for run in taken),
        }
    total = {key: figures["total_us"] for key, figures in per_server.items()}
    return {
        "load": f"{'wrk' if shutil.which('wrk') else 'python'} {THREADS} threads {CONNECTIONS} connections, "
        f"{MEASURED_SECONDS} s after {WARM_UP_SECONDS} s warm-up, {ROUNDS} rounds",
        "page_bytes": page_bytes,
        "servers": per_server,
        "ratios": {
            "A/B": round(total["A"] / total["B"], 2),
            "C/B": round(total["C"] / total["B"], 2),
            "A/C": round(total["A"] / total["C"], 2),
            "D/A": round(total["D"] / total["A"], 2),
            "E/A": round(total["E"] / total["A"], 2),
            "F/B": round(total["F"] / total["B"], 2),
            "A/F": round(total["A"] / total["F"], 2),
        },
        "redis_round_trips_per_page": trips,
    }


def print_report(figures: dict[str, Any]) -> None:
    """The figures as an aligned table, then as one JSON line."""
    print(f"CPU time per signed-in GET / ({figures['page_bytes']:,}-byte page; {figures['load']}; medians)")
    header = f"  {'':3}{'server':32}{'requests/run':>15}{'web µs':>8}{'Redis µs':>10}{'total µs':>10}{'restarts':>10}"
    print(header + f"{'boot ms':>9}")
    for key, row in figures["servers"].items():
        requests = "/".join(f"{count:,}" for count in row["requests"])
        restarts = "/".join(str(count) for count in row["worker_restarts"])
        line = f"  {key:3}{row['label']:32}{requests:>15}{row['web_us']:>8.0f}{row['redis_us']:>10.0f}"
        print(line + f"{row['total_us']:>10.0f}{restarts:>10}{row['worker_boot_ms']:>9.0f}")
    print("  ratios of total CPU per request: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["ratios"].items()))
    trips = figures["redis_round_trips_per_page"]
    print("  Redis round trips per page: " + ", ".join(f"{key} {count:g}" for key, count in trips.items()))
    print("\n" + json.dumps({"bench": "pages", **figures}, ensure_ascii=False))


# --profile: where a Gatehouse request's time goes.

# Code that is Gatehouse's or an extension's (not Flask, Werkzeug or the standard library):
# the project's modules and templates (not this bench's), and the packages the app adds to Flask.
ATTRIBUTABLE = (
    rf"^{re.escape(str(ROOT))}/(?!\.venv/|bench/)"
    r"|/site-packages/(flask_limiter|limits|flask_wtf|wtforms|itsdangerous|secure|flask_session|jinja2|msgspec|redis)/"
)


def profile(workdir: Path) -> None:
    """cProfile PROFILED_REQUESTS signed-in GET / through the test client, against a throwaway Redis.

    cProfile's own overhead inflates every figure (most for code making many small calls, like
    Jinja's): read it for where the time goes, not for how much a request costs.
    """
    redis_port = free_port()
    redis = start_redis(redis_port, data_dir=workdir)
    try:
        settings = gatehouse_settings(redis_port, workdir)
        app = create_app(settings)
        browser = app.test_client()
        browser.set_cookie(app.config["SESSION_COOKIE_NAME"], plant_reader(app))
        views(browser, 20)  # warm-up: loads the Lua scripts, stores the CSRF token, compiles templates
        started = time.process_time()
        views(browser, PROFILED_REQUESTS)
        unprofiled = (time.process_time() - started) / PROFILED_REQUESTS * 1e6
        # The default (wall-clock) timer: a CPU-time timer costs a system call per event, which
        # swamps Jinja's many small calls. Time blocked waiting for Redis shows as recv_into.
        profiler = cProfile.Profile()
        profiler.runcall(views, browser, PROFILED_REQUESTS)
    finally:
        stop([redis])
    print(f"{PROFILED_REQUESTS} GET / in-process (test client): {unprofiled:.0f} µs of CPU each without the profiler")
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    print("Top 40 by cumulative time, all code:")
    stats.print_stats(40)
    print("Top 30 by cumulative time, Gatehouse and extensions only:")
    stats.print_stats(ATTRIBUTABLE, 30)


def views(browser: Any, count: int) -> None:
    """GET / `count` times as the signed-in reader; anything but a 200 means the profile is of the wrong page."""
    for _ in range(count):
        response = browser.get("/", headers={"User-Agent": USER_AGENT})
        if response.status_code != 200:
            raise RuntimeError(f"GET / answered {response.status_code}")


def main() -> None:
    """Run the benchmark (or, with --profile, the profile) and print its figures."""
    with benchmark_folder() as folder:
        if "--profile" in sys.argv[1:]:
            profile(folder)
        else:
            print_report(run(folder))


if __name__ == "__main__":
    main()
