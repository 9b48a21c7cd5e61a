"""Gatehouse on Redis's topologies: a Cluster beside one server, Sentinel failovers, and what WAIT costs.

    .venv/bin/python -m bench.topologies     # or: make bench (about 3 minutes)

Four figures, each printed as a table, then as one JSON line ({"bench": "topologies", "figure": …}):

1. cluster_pages: CPU time per signed-in GET / with the sessions on a Redis Cluster (3 primaries and
   3 replicas, tests/support/redis_topology.RedisClusterGroup; the queue on a redis-server of its own)
   ÷ the same with sessions and queue on one redis-server. Every redis-server has AOF on
   (appendfsync everysec), as the cluster's nodes do. Measured as bench/pages.py measures (its
   functions): user+sys CPU of gunicorn's master and workers (gunicorn.conf.py, 2 workers) plus every
   redis-server involved (the 6 nodes and the queue's for the cluster), before and after a wrk run,
   divided by the requests served. Both get the same load: MEASURED_REQUESTS requests (each wrk
   thread stops after its share) going round the cookies of PLANTED_USERS users, each with a session
   planted through tests/support/session_records.plant_session, so the cluster's reads land on all
   three primaries. The runs alternate (one server, Cluster, one server, …), ROUNDS of each after an
   unmeasured warm-up; the table gives medians, and the ratio of the medians is held to the goal, ≤ 1.10.
   Beside them, the CPU the redis-servers use with no request at all (IDLE_SECONDS with both servers
   idle: cron, the cluster bus, replication pings), and what that comes to per request at the runs' rate.
2. cluster_spread: how SPREAD_USERS users' `gh:{U}:u` keys hash (CRC16, redis.crc.key_slot) to the live
   cluster's three primaries (their slot ranges from CLUSTER NODES). Goal: each within ±10 % of a third.
3. sentinel_failover: a Sentinel group (tests/support/redis_topology.SentinelGroup: a primary, two
   replicas, three Sentinels), started afresh at down-after-milliseconds 1000 and at 5000, a web process
   on it (tests/support/stack.start_stack, REDIS_WAIT_REPLICAS=1), LOAD_BROWSERS signed-in browsers
   viewing /profile in a loop (tests/support/page_load.PageLoad), then the primary SIGKILLed. Figures:
   answers other than 200 (all must be 503), seconds from the kill to the last of them, and the
   browsers signed out afterwards (must be none).
4. wait_cost: one Sentinel group, two web processes on it, REDIS_WAIT_REPLICAS=0 and =1
   (REDIS_WAIT_TIMEOUT_MS 250). SIGN_INS sequential sign-ins on each, a fresh browser and a new user
   each time, through the security suite's provider (tests/security/hostile_provider.py, in this
   process; /login, the provider, /auth/callback, the first page), and PAGE_VIEWS sequential signed-in
   GET / on each, in batches alternating 0 1 1 0 (BATCH_ORDER). Figures: sign-ins (page views) per second
   of their own wall time, CPU per sign-in (page view) of the web process plus the group's three data
   nodes (the Sentinels left out), p50 latency, and WAIT commands the primary ran per sign-in (page
   view; INFO commandstats).

No web process here runs an RQ worker: the CPU figures are the web's and Redis's. Every process it
starts is stopped at the end, whatever happens; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask

from app import create_app
from bench.pages import (
    ISSUER,
    THREADS,
    WRK_REPORT,
    CpuReading,
    Run,
    Server,
    cpu_seconds,
    fetch,
    gatehouse_settings,
    gunicorn,
    gunicorn_env,
    measured,
    migrate,
    signed_in_page,
    worker_boot_ms,
    wrk_command,
    wrk_served,
)
from bench.plain_app import READER
from bench.runner import benchmark_folder
from devstack.processes import free_port, start_redis, stop
from sessions import keys
from tests.integration.pages import is_signed_out
from tests.integration.topology_journeys import Topology, provider_settings
from tests.security.hostile_provider import HostileProvider
from tests.support.page_load import PageLoad
from tests.support.polling import wait_until
from tests.support.redis_topology import RedisClusterGroup, SentinelGroup
from tests.support.session_records import plant_session
from tests.support.stack import Stack, start_stack

# 1. The Cluster beside one server.
PLANTED_USERS = 200
WARM_UP_REQUESTS = 1_000
MEASURED_REQUESTS = 4_000
ROUNDS = 5
# wrk's -d: only a ceiling (see WRK_ROUND).
MAX_LOAD_SECONDS = 120
CLUSTER_GOAL = 1.10
# Seconds both servers sit idle while the redis-servers' own CPU (cron, cluster bus, replication pings) is read.
IDLE_SECONDS = 5
# 2. The spread of users over the primaries.
SPREAD_USERS = 10_000
SPREAD_GOAL = 0.10
# 3. Failovers.
DOWN_AFTER_MS = (1000, 5000)
LOAD_BROWSERS = 8
# Served again: this many seconds of nothing but 200s.
QUIET_SECONDS = 3
# 4. WAIT.
WAIT_TIMEOUT_MS = 250
SIGN_INS = 100
PAGE_VIEWS = 1_000
# REDIS_WAIT_REPLICAS of each batch: 10 batches per setting, interleaved so a busy moment hits both alike.
BATCH_ORDER = (0, 1, 1, 0) * 5
WARM_UP_SIGN_INS = 4
WARM_UP_VIEWS = 50

PROFILE = {"display_name": READER.display_name, "locale": READER.locale, "timezone": READER.timezone, "version": 0}

# Lua for wrk (before bench.pages.WRK_REPORT): each request carries the next planted cookie; each thread
# stops after its share and says so, and once all have, wrk is interrupted (its -d is only a ceiling:
# wrk sleeps for the whole duration unless interrupted, and SIGINT ends it with its report).
THREAD_DONE = "gatehouse-bench: thread done"
WRK_ROUND = """
local cookies = {%(cookies)s}
local share = %(share)d
local sent, answered = 0, 0
request = function()
  sent = sent + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Cookie"] = cookies[sent %% #cookies + 1]
  return wrk.format(nil, nil, headers)
end
response = function(status, headers, body)
  answered = answered + 1
  if answered == share then
    io.write("%(done)s\\n")
    io.flush()
    wrk.thread:stop()
  end
end
"""


def report(figure: str, lines: list[str], figures: dict[str, Any]) -> None:
    """A figure's table, then its JSON line."""
    print("\n".join(lines))
    print(json.dumps({"bench": "topologies", "figure": figure, **figures}, ensure_ascii=False), flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# ---- 1 and 2: the Cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class PageServer:
    """A running gunicorn serving Gatehouse on one topology, the redis-servers it uses, and its planted cookies."""

    key: str
    label: str
    process: subprocess.Popen
    url: str
    redis_pids: list[int]
    cookies: list[str]
    boot_ms: float


def redis_server(folder: Path, cleanup: ExitStack) -> tuple[int, subprocess.Popen]:
    """A redis-server with AOF (appendfsync everysec, like the cluster's nodes) on a free port, until `cleanup`."""
    folder.mkdir(parents=True)
    port = free_port()
    process = start_redis(port, data_dir=folder, appendonly=True)
    cleanup.callback(stop, [process])
    return port, process


def plant_readers(app: Flask) -> list[str]:
    """PLANTED_USERS users signed in, a session each (no provider involved); their Cookie header values."""
    name = app.config["SESSION_COOKIE_NAME"]
    return [f"{name}={plant_session(app, ISSUER, f'bench-reader-{index}', PROFILE)}" for index in range(PLANTED_USERS)]


def every_cookie_signed_in(server: PageServer) -> None:
    """Each planted session gets the signed-in page (wrk does not count a redirect to /login as a failure)."""
    for cookie in server.cookies:
        status, body = fetch(server.url, cookie)
        if status != 200 or READER.display_name not in body:
            raise RuntimeError(f"{server.label}: GET / answered {status} for a planted session")


def page_server(
    key: str, label: str, settings: dict[str, str], redis_pids: list[int], workdir: Path, cleanup: ExitStack
) -> PageServer:
    """Plant the sessions (in-process, the same settings), start gunicorn, check every cookie, warm it up."""
    cookies = plant_readers(create_app(settings))
    target = Server(key, label, "app:create_app()", cookies[0])
    process, url = cleanup.enter_context(gunicorn(target, gunicorn_env(settings), workdir / f"{key}.log"))
    signed_in_page(url, cookies[0], process)
    server = PageServer(key, label, process, url, redis_pids, cookies, worker_boot_ms(process.pid))
    every_cookie_signed_in(server)
    load_round(server, WARM_UP_REQUESTS)
    return server


def load_round(server: PageServer, count: int) -> int:
    """`count` GET / over wrk's connections (each thread its share), going round the planted cookies; returns
    the requests served (a few more may have been sent but not answered when wrk stopped)."""
    cookies = ", ".join(json.dumps(cookie) for cookie in server.cookies)
    lua = WRK_ROUND % {"cookies": cookies, "share": -(-count // THREADS), "done": THREAD_DONE}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua + WRK_REPORT)
        script.flush()
        command = wrk_command(server.url, MAX_LOAD_SECONDS, script.name, [])
        output = interrupted_when_done(command)
    return wrk_served(output, server.url)


def interrupted_when_done(command: list[str]) -> str:
    """Run wrk and SIGINT it once every thread has printed THREAD_DONE; its whole output."""
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:  # noqa: S603
        try:
            for line in wrk.stdout or ():
                lines.append(line)
                if line.strip() == THREAD_DONE and lines.count(line) == THREADS:
                    wrk.send_signal(signal.SIGINT)
            errors = wrk.stderr.read() if wrk.stderr else ""
            returncode = wrk.wait(timeout=30)
        except BaseException:
            wrk.kill()
            raise
    if returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {returncode}: {errors[-2000:]}")
    return "".join(lines)


def measure_round(server: PageServer) -> tuple[Run, float]:
    """One measured run, and its wall seconds."""
    started = time.monotonic()
    run = measured(server.process.pid, server.redis_pids, server.boot_ms, lambda: load_round(server, MEASURED_REQUESTS))
    return run, time.monotonic() - started


def idle_redis(servers: list[PageServer]) -> dict[str, float]:
    """Milliseconds of CPU per second each server's redis-servers use with no request at all."""
    before = {server.key: sum(map(cpu_seconds, server.redis_pids)) for server in servers}
    time.sleep(IDLE_SECONDS)
    after = {server.key: sum(map(cpu_seconds, server.redis_pids)) for server in servers}
    return {key: round((after[key] - before[key]) / IDLE_SECONDS * 1e3, 1) for key in before}


def cluster_figures(workdir: Path) -> None:
    """Figures 1 and 2, on one cluster."""
    workdir.mkdir(parents=True)
    with ExitStack() as cleanup:
        cluster = RedisClusterGroup(workdir / "cluster")
        cluster.start()  # stops its nodes itself if it fails
        cleanup.callback(cluster.stop)
        single_port, single = redis_server(workdir / "single-redis", cleanup)
        queue_port, queue = redis_server(workdir / "queue-redis", cleanup)
        settings = gatehouse_settings(single_port, workdir)  # sessions and queue on the one server
        on_cluster = {**settings, "REDIS_URL": cluster.url, "QUEUE_REDIS_URL": f"redis://127.0.0.1:{queue_port}/0"}
        migrate(gunicorn_env(settings))  # one SQLite database for both (pages never touch it)
        cluster_pids = [node.process.pid for node in cluster.nodes if node.process is not None]
        servers = [
            page_server("single", "one redis-server", settings, [single.pid], workdir, cleanup),
            page_server(
                "cluster", "Cluster 3+3, queue server", on_cluster, [*cluster_pids, queue.pid], workdir, cleanup
            ),
        ]
        idle = idle_redis(servers)
        runs: dict[str, list[tuple[Run, float]]] = {server.key: [] for server in servers}
        for _ in range(ROUNDS):
            for server in servers:
                runs[server.key].append(measure_round(server))
        for server in servers:
            every_cookie_signed_in(server)  # still signed in: every measured request was the signed-in page
        planted = cluster.slot_owner_counts([user_key(f"bench-reader-{index}") for index in range(PLANTED_USERS)])
        report(*cluster_pages(servers, runs, idle, primaries_by_port(cluster, planted)))
        report(*cluster_spread(cluster, [user_key(f"user-{index}") for index in range(SPREAD_USERS)]))


def user_key(subject: str) -> str:
    """`gh:{U}:u` of a user at ISSUER whose subject is a UUID derived from `subject` (as most providers give)."""
    return keys.user_key(keys.user_tag(ISSUER, str(uuid.uuid5(uuid.NAMESPACE_URL, subject))))


def primaries_by_port(cluster: RedisClusterGroup, counts: dict[str, int]) -> list[tuple[int, int, int]]:
    """(port, slots owned, count) per primary, in port order, from per-node-id counts."""
    return sorted((node.port, len(cluster.slots_of(node)), counts[node.node_id]) for node in cluster.primaries())


def cluster_spread(cluster: RedisClusterGroup, user_keys: list[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Figure 2: users per primary and each one's deviation from an even third."""
    rows = primaries_by_port(cluster, cluster.slot_owner_counts(user_keys))
    even = len(user_keys) / len(rows)
    deviations = [round((count - even) / even * 100, 1) for _, _, count in rows]
    worst = max(abs(deviation) for deviation in deviations)
    lines = [f"\n2. {len(user_keys):,} users' gh:{{U}}:u keys over the cluster's primaries (UUID subjects)"]
    lines.append(f"  {'primary':17}{'slots':>8}{'users':>8}{'vs a third':>12}")
    for (port, slots, count), deviation in zip(rows, deviations, strict=True):
        lines.append(f"  {f'127.0.0.1:{port}':17}{slots:>8,}{count:>8,}{deviation:>+11.1f}%")
    lines.append(
        f"  widest deviation {worst:.1f} %; goal within ±{SPREAD_GOAL:.0%}: {verdict(worst <= SPREAD_GOAL * 100)}"
    )
    figures = {
        "users": len(user_keys),
        "per_primary": [{"slots": slots, "users": count} for _, slots, count in rows],
        "deviation_pct": deviations,
        "goal_met": worst <= SPREAD_GOAL * 100,
    }
    return "cluster_spread", lines, figures


def run_figures(timed: list[tuple[Run, float]], idle_ms_per_s: float) -> dict[str, Any]:
    """Medians of one topology's runs; `redis_idle_us`: the part of Redis's CPU per request it spends anyway."""
    taken = [run for run, _ in timed]
    seconds = statistics.median(wall for _, wall in timed)
    return {
        "requests": [run.requests for run in taken],
        "seconds": round(seconds, 1),
        "redis_idle_ms_per_s": idle_ms_per_s,
        "redis_idle_us": round(idle_ms_per_s * 1e3 * seconds / statistics.median(run.requests for run in taken), 1),
        "web_us": round(statistics.median(run.web_us for run in taken), 1),
        "redis_us": round(statistics.median(run.redis_us for run in taken), 1),
        "total_us": round(statistics.median(run.total_us for run in taken), 1),
        "total_us_each_run": [round(run.total_us, 1) for run in taken],
        "worker_restarts": sum(run.worker_restarts for run in taken),
    }


def cluster_pages(
    servers: list[PageServer],
    runs: dict[str, list[tuple[Run, float]]],
    idle: dict[str, float],
    planted: list[tuple[int, int, int]],
) -> tuple[str, list[str], dict[str, Any]]:
    """Figure 1: the medians of each topology, and cluster ÷ one server (of the medians, and round by round)."""
    per = {s.key: {"label": s.label, **run_figures(runs[s.key], idle[s.key])} for s in servers}
    single, cluster = per["single"], per["cluster"]
    ratio = round(cluster["total_us"] / single["total_us"], 2)
    pairs = zip(runs["single"], runs["cluster"], strict=True)
    each = [round(c.total_us / s.total_us, 2) for (s, _), (c, _) in pairs]
    lines = [
        f"\n1. CPU per signed-in GET / ({PLANTED_USERS} users' sessions; wrk {THREADS} threads, about "
        f"{MEASURED_REQUESTS:,} requests a run, {ROUNDS} runs each, alternating; medians)",
        f"  {'topology':28}{'requests':>14}{'web µs':>8}{'Redis µs':>10}{'total µs':>10}{'Redis idle':>12}",
    ]
    for row in per.values():
        counts = row["requests"]
        requests_per_run = f"{len(counts)} × {counts[0]:,}" if len(set(counts)) == 1 else "/".join(map(str, counts))
        cpu = f"{row['web_us']:>8.0f}{row['redis_us']:>10.0f}{row['total_us']:>10.0f}"
        idle_share = f"{row['redis_idle_us']:>5.0f} µs/req"
        lines.append(f"  {row['label']:28}{requests_per_run:>14}{cpu}{idle_share:>12}")
    lines.append(
        f"  Cluster ÷ one server (of the medians): {ratio:.2f}; "
        f"goal ≤ {CLUSTER_GOAL:.2f}: {verdict(ratio <= CLUSTER_GOAL)}"
    )
    lines.append(
        f"  round by round {' / '.join(f'{r:.2f}' for r in each)} (median {statistics.median(each):.2f}); "
        f"web alone {cluster['web_us'] / single['web_us']:.2f}, "
        f"Redis alone {cluster['redis_us'] / single['redis_us']:.2f}"
    )
    lines.append(
        "  Redis idle: CPU the redis-servers use anyway ("
        + ", ".join(f"{row['label']} {row['redis_idle_ms_per_s']:g} ms/s" for row in per.values())
        + f", over {IDLE_SECONDS} s with no request), spread over a run's requests"
    )
    lines.append("  planted users per primary: " + " / ".join(str(count) for _, _, count in planted))
    figures = {
        "servers": per,
        "ratio": ratio,
        "ratio_each_round": each,
        "ratio_median_of_rounds": statistics.median(each),
        "web_ratio": round(cluster["web_us"] / single["web_us"], 2),
        "redis_ratio": round(cluster["redis_us"] / single["redis_us"], 2),
        "planted_per_primary": [count for _, _, count in planted],
        "goal_met": ratio <= CLUSTER_GOAL,
    }
    return "cluster_pages", lines, figures


# ---- 3 and 4: Sentinel ---------------------------------------------------------------------------


def sentinel_stack(workdir: Path, group: SentinelGroup, provider: HostileProvider, wait_replicas: int) -> Stack:
    """One gunicorn (gunicorn.conf.py, 2 workers) whose sessions and queue are on the group; no RQ worker."""
    return start_stack(
        workdir,
        workers=0,
        provider=None,
        redis_url=group.url,
        redis_client=lambda: group.client_for(group.primary()),
        settings={
            **provider_settings(provider),
            "REDIS_WAIT_REPLICAS": wait_replicas,
            "REDIS_WAIT_TIMEOUT_MS": WAIT_TIMEOUT_MS,
        },
    )


def signed_in(topology: Topology, subject: str) -> requests.Session:
    """A fresh browser signed in as `subject`, having landed on the first page."""
    browser = requests.Session()
    page = topology.sign_in(browser, subject)
    if page.status_code != 200 or urlsplit(page.url).path != "/":
        raise RuntimeError(f"sign-in of {subject} ended on {page.status_code} {page.url}")
    return browser


def failover(workdir: Path, down_after_ms: int, provider: HostileProvider) -> dict[str, Any]:
    """Figure 3 at one down-after: a fresh group and web process, the primary SIGKILLed under page load."""
    with ExitStack() as cleanup:
        group = SentinelGroup(workdir / "redis", down_after_ms=down_after_ms)
        group.start()  # stops what it started if it fails
        cleanup.callback(group.stop)
        stack = sentinel_stack(workdir / "stack", group, provider, wait_replicas=1)
        cleanup.callback(stack.stop)
        topology = Topology("sentinel", stack, provider)
        # Two devices per user.
        browsers = [signed_in(topology, f"failover-{down_after_ms}-{index // 2}") for index in range(LOAD_BROWSERS)]
        with PageLoad(stack.web_url, browsers) as load:
            wait_until(lambda: load.answers["200"] >= 20, timeout=30, what="the page load to get going")
            old = group.kill_primary()
            killed_at = old.killed_at if old.killed_at is not None else time.monotonic()
            promoted_after = group.wait_for_new_primary(old, timeout=90)
            wait_until(
                lambda: time.monotonic() - max(load.last_unserved, killed_at) > QUIET_SECONDS,
                timeout=90,
                what="pages served again after the failover",
            )
            with load.lock:
                back_after = max(load.last_unserved, killed_at) - killed_at
                answers = dict(load.answers)
        signed_out = sum(is_signed_out(browser, stack.web_url) for browser in browsers)
    unserved = sum(count for answer, count in answers.items() if answer != "200")
    return {
        "down_after_ms": down_after_ms,
        "unserved": unserved,
        "all_503": set(answers) <= {"200", "503"},
        "answers": answers,
        "served_again_after_s": round(back_after, 2),
        "new_primary_after_s": round(promoted_after, 2),
        "signed_out": signed_out,
    }


def failover_report(results: list[dict[str, Any]]) -> tuple[str, list[str], dict[str, Any]]:
    lines = [
        f"\n3. A SIGKILLed Sentinel primary under {LOAD_BROWSERS} signed-in browsers' page load "
        "(REDIS_WAIT_REPLICAS=1)",
        f"  {'down-after':>10}{'not 200':>9}{'all 503':>9}{'served again':>14}{'Sentinels agree':>17}"
        f"{'signed out':>12}",
    ]
    for row in results:
        lines.append(
            f"  {row['down_after_ms']:>8} ms{row['unserved']:>9,}{'yes' if row['all_503'] else 'NO':>9}"
            f"{row['served_again_after_s']:>12.1f} s{row['new_primary_after_s']:>15.1f} s{row['signed_out']:>12}"
        )
    met = all(row["all_503"] and not row["signed_out"] for row in results)
    lines.append(f"  every unserved answer a 503 and no one signed out: {verdict(met)}")
    return "sentinel_failover", lines, {"runs": results, "goal_met": met}


@dataclass
class Tally:
    """Sequential actions on one web process: each one's wall time; per batch, their count and CPU seconds
    (web, Redis); the WAITs of all of them."""

    latencies: list[float] = field(default_factory=list)
    batches: list[tuple[int, float, float]] = field(default_factory=list)
    waits: int = 0

    def figures(self) -> dict[str, Any]:
        """Actions per second of their own wall time, CPU per action (all batches' CPU ÷ all actions: /proc counts
        in 10 ms ticks, too coarse for one batch's), p50 latency, WAITs per action."""
        count = len(self.latencies)
        web = sum(batch[1] for batch in self.batches)
        redis = sum(batch[2] for batch in self.batches)
        return {
            "count": count,
            "per_second": round(count / sum(self.latencies), 1),
            "web_us": round(web / count * 1e6),
            "redis_us": round(redis / count * 1e6),
            "total_us": round((web + redis) / count * 1e6),
            "p50_ms": round(statistics.median(self.latencies) * 1e3, 2),
            "waits_per_action": round(self.waits / count, 2),
        }


def wait_calls(group: SentinelGroup) -> int:
    """WAIT commands the current primary has run (INFO commandstats)."""
    info = group.primary().info("commandstats") or {}
    return int(info.get("cmdstat_wait", {}).get("calls", 0))


def timed_batch(tally: Tally, stack: Stack, group: SentinelGroup, action: Callable[[], None], count: int) -> None:
    """`count` times `action`, one after the other; CPU of the web process and the group's data nodes either side."""
    redis_pids = [node.process.pid for node in group.data_nodes if node.process is not None]
    master = stack.processes["web0"].pid
    waits = wait_calls(group)
    before = CpuReading.take(master, *redis_pids)
    for _ in range(count):
        started = time.perf_counter()
        action()
        tally.latencies.append(time.perf_counter() - started)
    after = CpuReading.take(master, *redis_pids)
    tally.batches.append((count, after.web - before.web, after.redis - before.redis))
    tally.waits += wait_calls(group) - waits


def page_view(browser: requests.Session, url: str) -> Callable[[], None]:
    def view() -> None:
        answer = browser.get(url, allow_redirects=False, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {url} answered {answer.status_code}")

    return view


def wait_cost(workdir: Path, provider: HostileProvider) -> tuple[str, list[str], dict[str, Any]]:
    """Figure 4: sign-ins and page views on one group through two web processes, WAIT for 0 and 1 replicas."""
    with ExitStack() as cleanup:
        group = SentinelGroup(workdir / "redis")
        group.start()
        cleanup.callback(group.stop)
        topologies: dict[int, Topology] = {}
        for replicas in (0, 1):
            stack = sentinel_stack(workdir / f"wait-{replicas}", group, provider, wait_replicas=replicas)
            cleanup.callback(stack.stop)
            topologies[replicas] = Topology(f"wait-{replicas}", stack, provider)
        readers = {}
        for replicas, topology in topologies.items():  # unmeasured: discovery and JWKS fetched, templates compiled
            browsers = [signed_in(topology, f"warm-up-{replicas}-{index}") for index in range(WARM_UP_SIGN_INS)]
            readers[replicas] = browsers[0]
            for _ in range(WARM_UP_VIEWS):
                page_view(readers[replicas], topology.stack.web_url + "/")()
        sign_ins = {replicas: Tally() for replicas in topologies}
        views = {replicas: Tally() for replicas in topologies}
        subjects = itertools.count()
        batches_each = len(BATCH_ORDER) // len(topologies)
        for replicas in BATCH_ORDER:
            topology = topologies[replicas]

            def sign_in(topology: Topology = topology, replicas: int = replicas) -> None:
                signed_in(topology, f"wait-{replicas}-{next(subjects)}").close()

            timed_batch(sign_ins[replicas], topology.stack, group, sign_in, SIGN_INS // batches_each)
            view = page_view(readers[replicas], topology.stack.web_url + "/")
            timed_batch(views[replicas], topology.stack, group, view, PAGE_VIEWS // batches_each)
    return wait_report(sign_ins, views)


def wait_report(sign_ins: dict[int, Tally], views: dict[int, Tally]) -> tuple[str, list[str], dict[str, Any]]:
    figures: dict[str, Any] = {
        "sign_ins": {str(replicas): tally.figures() for replicas, tally in sign_ins.items()},
        "page_views": {str(replicas): tally.figures() for replicas, tally in views.items()},
    }
    lines = [
        f"\n4. What WAIT costs on the Sentinel group: {SIGN_INS} sequential sign-ins and {PAGE_VIEWS} sequential "
        f"signed-in GET / per setting, batches alternating {' '.join(map(str, BATCH_ORDER))}",
        f"  {'':12}{'REDIS_WAIT_REPLICAS':>20}{'per s':>8}{'web µs':>8}{'Redis µs':>10}{'total µs':>10}"
        f"{'p50 ms':>8}{'WAITs':>7}",
    ]
    for kind in ("sign_ins", "page_views"):
        for replicas, row in figures[kind].items():
            lines.append(
                f"  {kind.replace('_', ' '):12}{replicas:>20}{row['per_second']:>8.1f}{row['web_us']:>8}"
                f"{row['redis_us']:>10}{row['total_us']:>10}{row['p50_ms']:>8.2f}{row['waits_per_action']:>7}"
            )
        zero, one = figures[kind]["0"], figures[kind]["1"]
        figures[f"{kind}_ratios"] = ratios = {
            "per_second": round(one["per_second"] / zero["per_second"], 2),
            "total_us": round(one["total_us"] / zero["total_us"], 2),
            "p50_ms": round(one["p50_ms"] / zero["p50_ms"], 2),
        }
        lines.append(f"  {kind.replace('_', ' ')}, 1 ÷ 0: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    no_page_waits = all(row["waits_per_action"] == 0 for row in figures["page_views"].values())
    lines.append(f"  page views never WAIT (0 WAITs at either setting): {verdict(no_page_waits)}")
    figures["pages_never_wait"] = no_page_waits
    return "wait_cost", lines, figures


def sentinel_figures(workdir: Path) -> None:
    """Figures 3 and 4, through one provider."""
    provider = HostileProvider().start()
    try:
        results = [failover(workdir / f"failover-{ms}", ms, provider) for ms in DOWN_AFTER_MS]
        report(*failover_report(results))
        report(*wait_cost(workdir / "wait", provider))
    finally:
        provider.stop()


def main() -> None:
    """Run the four figures and print them."""
    with benchmark_folder() as folder:
        cluster_figures(folder / "cluster")
        sentinel_figures(folder / "sentinel")


if __name__ == "__main__":
    main()
