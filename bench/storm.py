"""Latency under a sign-in storm: Gatehouse beside the typical Flask stack, one after the other, same machine.

    .venv/bin/python -m bench.storm                    # or: make bench
    .venv/bin/python -m bench.storm --worker-paused    # diagnosis: G's worker stopped during G's storms

The deployment is bench/signins.py's: one redis-server, one development provider, Gatehouse (G, two
gunicorn workers under gunicorn.conf.py, plus one RQ worker persisting users to SQLite) and the typical
stack (T, bench/typical_signin_app.py, same gunicorn settings), all running throughout.

CLIENTS concurrent clients each do CYCLES cycles of: one whole sign-in by a new browser (/login, the
provider's form, the callback: timed as one sign-in), then PAGES_PER_SIGN_IN signed-in `GET /` (each
timed as one page view). That is a fixed count of operations per server. G's storm and T's alternate,
ROUNDS times (G T G T), so a busy moment of the shared machine meets both; the figures pool the rounds.

The load generator runs in PROCESSES child processes of THREADS_PER_PROCESS threads each, not in this
process, with bench/browser.py (http.client, keep-alive) rather than `requests`, so that its own CPU
stays small and no single interpreter's lock serialises the clients. It still shares the two cores with
the servers: its CPU is not counted anywhere, but it does compete, alike for G and T.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.browser import Browser, sign_in
from bench.signins import Persisted, deployment, wait_for

CLIENTS = 32
PROCESSES = 4
THREADS_PER_PROCESS = CLIENTS // PROCESSES
CYCLES = 5
PAGES_PER_SIGN_IN = 10
ROUNDS = 2
WARM_UP_SIGN_INS = 4


def client(base_url: str, name: str, results: list[tuple[str, float]], start: threading.Barrier) -> None:
    """One client's cycles; appends ("sign_in" | "page", seconds) per operation."""
    browser = Browser()
    start.wait()
    try:
        for cycle in range(CYCLES):
            browser.forget_cookies()
            started = time.perf_counter()
            sign_in(browser, base_url, f"{name}-{cycle}")
            results.append(("sign_in", time.perf_counter() - started))
            for _ in range(PAGES_PER_SIGN_IN):
                started = time.perf_counter()
                page = browser.get(f"{base_url}/")
                results.append(("page", time.perf_counter() - started))
                if page.status != 200:
                    raise RuntimeError(f"GET / answered {page.status}")
    finally:
        browser.close()


def load_process(base_url: str, prefix: str, ready: Any, go: Any, out: Any) -> None:
    """THREADS_PER_PROCESS clients in one child process; sends its timings (or the error) on `out`."""
    results: list[tuple[str, float]] = []
    errors: list[str] = []
    barrier = threading.Barrier(THREADS_PER_PROCESS)

    def run(index: int) -> None:
        try:
            client(base_url, f"{prefix}-{index}", results, barrier)
        except Exception as error:  # reported to the parent, which fails the bench
            errors.append(f"{type(error).__name__}: {error}")
            barrier.abort()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS_PER_PROCESS)]
    ready.set()
    go.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.send({"results": results, "errors": errors})
    out.close()


def storm(base_url: str, prefix: str) -> dict[str, list[float]]:
    """Every client's operations against one server, all processes started together; timings by kind."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter, not a copy of this one
    go = context.Event()
    children = []
    for index in range(PROCESSES):
        ready = context.Event()
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=load_process, args=(base_url, f"{prefix}-p{index}", ready, go, send))
        process.start()
        children.append((process, ready, receive))
    for _, ready, _ in children:
        ready.wait(60)
    go.set()
    timings: dict[str, list[float]] = {"sign_in": [], "page": []}
    errors: list[str] = []
    for process, _, receive in children:
        report = receive.recv()
        process.join(60)
        errors += report["errors"]
        for kind, seconds in report["results"]:
            timings[kind].append(seconds)
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed, first: {errors[0]}")
    return timings


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0.5, 0.99) in ms, by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1] * 1e3


def figures(timings: dict[str, list[float]]) -> dict[str, Any]:
    """p50 / p99 of page views and sign-ins, in ms, with the counts they come from."""
    pages, sign_ins = timings["page"], timings["sign_in"]
    return {
        "pages": len(pages),
        "sign_ins": len(sign_ins),
        "page_p50_ms": round(percentile(pages, 0.50), 1),
        "page_p99_ms": round(percentile(pages, 0.99), 1),
        "sign_in_p50_ms": round(percentile(sign_ins, 0.50), 1),
        "sign_in_p99_ms": round(percentile(sign_ins, 0.99), 1),
        "page_mean_ms": round(statistics.fmean(pages) * 1e3, 1),
    }


def run(workdir: Path, worker_paused: bool = False) -> dict[str, Any]:
    """G's and T's storms, alternating, ROUNDS times; pooled figures per server, per round, and ratios.

    `worker_paused` (a diagnosis, not the figure): G's RQ worker is stopped (SIGSTOP) during G's storms and
    its backlog is drained before T's, to tell the web side's latency from the worker's competition for CPU.
    """
    pooled: dict[str, dict[str, list[float]]] = {key: {"sign_in": [], "page": []} for key in ("G", "T")}
    rounds: dict[str, list[dict[str, Any]]] = {"G": [], "T": []}
    with deployment(workdir) as stack:
        urls = {"G": stack.gatehouse_url, "T": stack.typical_url}
        for key, url in urls.items():  # discovery, JWKS, templates: before anything is timed
            for index in range(WARM_UP_SIGN_INS):
                browser = Browser()
                sign_in(browser, url, f"warm-{key}-{index}")
                browser.close()
        persisted = Persisted(stack.database)
        for round_ in range(ROUNDS):
            for key, url in urls.items():
                if key == "G" and worker_paused:
                    os.kill(stack.worker.pid, signal.SIGSTOP)
                try:
                    timings = storm(url, f"storm-{key}-{round_}")
                finally:
                    if key == "G" and worker_paused:
                        os.kill(stack.worker.pid, signal.SIGCONT)
                if key == "G":  # T's storm must not meet G's worker catching up
                    expected = WARM_UP_SIGN_INS + (round_ + 1) * CLIENTS * CYCLES
                    wait_for(lambda count=expected: persisted.sign_in_events() >= count, "G's backlog", timeout=600)
                rounds[key].append(figures(timings))
                for kind, values in timings.items():
                    pooled[key][kind] += values
        persisted.close()
    result = {key: figures(timings) for key, timings in pooled.items()}
    return {
        "clients": CLIENTS,
        "worker_paused_during_gatehouse_storm": worker_paused,
        "load": f"{PROCESSES} processes x {THREADS_PER_PROCESS} threads, each client {CYCLES} x (1 sign-in + "
        f"{PAGES_PER_SIGN_IN} GET /), {ROUNDS} rounds G T G T",
        "servers": result,
        "rounds": rounds,
        "ratios": {
            name: round(result["G"][name] / result["T"][name], 2)
            for name in ("page_p50_ms", "page_p99_ms", "sign_in_p99_ms")
        },
    }


def print_report(report: dict[str, Any]) -> None:
    """The table, then the figures as one JSON line."""
    print(f"Latency under a storm of {report['clients']} clients ({report['load']}); ms, rounds pooled")
    print(
        f"  {'':18}{'pages':>7}{'p50':>8}{'p99':>8}{'sign-ins':>10}{'p50':>8}{'p99':>8}   p99 page / sign-in by round"
    )
    for key, label in (("G", "Gatehouse"), ("T", "typical stack")):
        row = report["servers"][key]
        by_round = ", ".join(
            f"{each['page_p99_ms']:.0f}/{each['sign_in_p99_ms']:.0f}" for each in report["rounds"][key]
        )
        print(
            f"  {key} {label:16}{row['pages']:>7}{row['page_p50_ms']:>8.1f}{row['page_p99_ms']:>8.1f}"
            f"{row['sign_ins']:>10}{row['sign_in_p50_ms']:>8.1f}{row['sign_in_p99_ms']:>8.1f}   {by_round}"
        )
    print("  G ÷ T: " + ", ".join(f"{name} {ratio:.2f}" for name, ratio in report["ratios"].items()))
    print("\n" + json.dumps({"bench": "storm", **report}, ensure_ascii=False))


def main() -> None:
    """Run the storms and print the figures."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-storm-") as folder:
        print_report(run(Path(folder), worker_paused="--worker-paused" in sys.argv[1:]))
    sys.stdout.flush()
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
