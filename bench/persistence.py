"""Persisting sign-ins: one worker's rate against raw upserts, and sign-in with the database locked.

    .venv/bin/python -m bench.persistence      # or: make bench

For SQLite and for PostgreSQL (the throwaway cluster the tests use, tests/support/postgres.py;
like the tests' clusters it runs with fsync off), it starts its own deployment through
tests/support/stack.py (redis-server, migrations, no worker yet) and measures:

1. Raw upserts: the job's own statement (`accounts.upsert.upsert_users`) for one new user per
   transaction, RAW rows, from this process: single-row upsert transactions per second.
2. One worker: SIGN_INS realistic sign-in records queued through the app's real enqueue path
   (`accounts.persistence.enqueue_persistence`), each followed by the audit event a sign-in queues
   (`audit.events.record`), as a login storm fills the queue, then ONE `flask --app app worker --burst`
   process. Persisted sign-ins per second = jobs / (last job's end - first job's start), from
   RQ's own timestamps, so the worker's start-up is left out (its whole wall time is printed
   too). Every job must have finished and every row exist, or the bench fails. The same with
   WORKER_BATCH_SIZE=1 (every job its own work horse and transaction, as before batching) on
   a smaller queue, for comparison.
3. Sign-in latency with the database locked / unlocked: a real web process (gunicorn) and
   the development provider; the whole browser flow (/login, the provider's form, the
   callback, the first page) timed over plain HTTP, alternately with the database free and
   with it locked (SQLite: BEGIN EXCLUSIVE; PostgreSQL: LOCK TABLE users). The median of
   each; sign-in must not touch the database, so the ratio should be about 1.

Raw upserts run right before each worker run on the same database, so both meet the same
machine; this is done ROUNDS times per database and the medians are printed (the ratio is the
median of each run's ratio).
It prints a table, then the figures as one JSON line (for docs/performance.md). Everything
it starts is stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from accounts.persistence import enqueue_persistence, user_record
from accounts.upsert import upsert_users
from audit import events as audit
from config import BaseConfig
from extensions import db
from jobs.queues import job_queue
from models.audit import AuditEvent
from tests.reliability.helpers import start_reliability_stack
from tests.support.browserless import sign_in
from tests.support.faults import sqlite_locked
from tests.support.postgres import PostgresCluster, start_cluster
from tests.support.stack import Stack

ISSUER = "https://login.example.com/realms/staff"
SIGN_INS = 5_000
UNBATCHED_SIGN_INS = 300
RAW = 2_000
SIGN_IN_ROUNDS = 15
# Raw upserts, then the worker, this many times on each database: a shared machine's busy
# moments move single runs a lot; the medians are printed.
ROUNDS = 3
SETTINGS = {
    # Sign-ins come from one address here: lift the per-address limits.
    "LOGIN_RATE_LIMIT": "100000 per minute",
    "LOGIN_RATE_LIMIT_PER_NETWORK": "100000 per minute",
    "LOGIN_RATE_LIMIT_TOTAL": "100000 per minute",
    "CALLBACK_RATE_LIMIT": "100000 per minute",
    # The production worker timings, not the reliability tests' short ones.
    "WORKER_MONITOR_INTERVAL": BaseConfig.WORKER_MONITOR_INTERVAL,
    "WORKER_ABANDON_GRACE": BaseConfig.WORKER_ABANDON_GRACE,
    "WORKER_MAINTENANCE_INTERVAL": BaseConfig.WORKER_MAINTENANCE_INTERVAL,
    "JOB_RETRY_INTERVALS": BaseConfig.JOB_RETRY_INTERVALS,
}


def sign_in_record(index: int, prefix: str) -> dict[str, Any]:
    """What a sign-in queues: the user's claims and profile, each with its version (ms)."""
    subject = f"{prefix}-{index:06d}-2f6c1b0e-9a4d"
    version = 1_764_633_600_000 + index
    identity = {
        "issuer": ISSUER,
        "subject": subject,
        "email": f"{prefix}.{index}@staff.example.com",
        "name": f"Staff Member {index}",
        "picture": f"https://avatars.example.com/{subject}.png",
    }
    profile = {"display_name": f"Staff Member {index}", "locale": "en", "timezone": "Europe/Berlin"}
    return user_record(identity, profile, identity_version=version, profile_version=version)


def raw_upserts(stack: Stack, prefix: str) -> float:
    """Single-row upsert transactions per second: the job's statement, one new user per transaction."""
    records = [sign_in_record(index, prefix) for index in range(RAW)]
    with stack.context():
        started = time.perf_counter()
        for record in records:
            upsert_users([record])
            db.session.commit()
        elapsed = time.perf_counter() - started
        db.session.remove()
    return RAW / elapsed


def worker_rate(stack: Stack, count: int, prefix: str, batch_size: int) -> dict[str, float]:
    """Queue `count` sign-ins, run one burst worker, and return its persisted sign-ins per second."""
    with stack.context() as app, app.test_request_context("/", headers={"User-Agent": "bench"}):
        for index in range(count):
            record = sign_in_record(index, prefix)
            enqueue_persistence(record)
            audit.record("sign_in", "success", issuer=record["issuer"], subject=record["subject"])
        queue = job_queue()
        job_ids = queue.get_job_ids()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"],
        env={**stack.env, "WORKER_BATCH_SIZE": str(batch_size)},
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    with stack.context():
        jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
    done = [job for job in jobs if job is not None and job.get_status(refresh=False) == JobStatus.FINISHED]
    if len(done) != 2 * count:
        raise RuntimeError(f"only {len(done)} of {2 * count} jobs (sign-ins and their audit events) finished")
    persisted = {row["subject"] for row in stack.users() if row["subject"].startswith(f"{prefix}-")}
    if len(persisted) != count:
        raise RuntimeError(f"only {len(persisted)} of {count} users were persisted")
    with stack.context():
        recorded = db.session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.subject.startswith(f"{prefix}-"))
        ).scalar_one()
        db.session.remove()
    if recorded != count:
        raise RuntimeError(f"only {recorded} of {count} audit events were stored")
    first = min(job.started_at for job in done if job.started_at)
    last = max(job.ended_at for job in done if job.ended_at)
    return {"per_second": count / (last - first).total_seconds(), "wall_seconds": wall}


@contextmanager
def postgres_locked(url: str) -> Iterator[None]:
    """LOCK TABLE users (ACCESS EXCLUSIVE): every read or write of it waits until the block exits."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("LOCK TABLE users")
        try:
            yield
        finally:
            connection.rollback()


def database_locked(database_url: str) -> AbstractContextManager[None]:
    """The lock for this database."""
    if database_url.startswith("sqlite:///"):
        return sqlite_locked(database_url.removeprefix("sqlite:///"))
    return postgres_locked(database_url)


def timed_sign_in(web_url: str, subject: str) -> float:
    """Seconds for one whole sign-in (a fresh browser each time)."""
    with requests.Session() as http:
        started = time.perf_counter()
        page = sign_in(http, web_url, subject)
        elapsed = time.perf_counter() - started
    if page.status_code != 200:
        raise RuntimeError(f"sign-in answered {page.status_code}")
    return elapsed


def sign_in_latency(stack: Stack) -> dict[str, float]:
    """Median sign-in time with the database free and locked, alternating, and their ratio."""
    web = stack.web_url
    timed_sign_in(web, "warm-up")
    free, locked = [], []
    for round_ in range(SIGN_IN_ROUNDS):
        free.append(timed_sign_in(web, f"free-{round_}"))
        with database_locked(stack.settings["DATABASE_URL"]):
            locked.append(timed_sign_in(web, f"locked-{round_}"))
    unlocked_ms, locked_ms = statistics.median(free) * 1000, statistics.median(locked) * 1000
    return {"unlocked_ms": unlocked_ms, "locked_ms": locked_ms, "ratio": locked_ms / unlocked_ms}


def measure(workdir: Path, database_url: str | None) -> dict[str, Any]:
    """Every figure for one database."""
    stack = start_reliability_stack(
        workdir, database_url=database_url, provider=True, web=1, workers=0, settings=SETTINGS
    )
    raws: list[float] = []
    runs: list[dict[str, float]] = []
    try:
        for round_ in range(ROUNDS):
            raws.append(raw_upserts(stack, f"raw{round_}"))
            runs.append(worker_rate(stack, SIGN_INS, f"signin{round_}", batch_size=BaseConfig.WORKER_BATCH_SIZE))
        unbatched = worker_rate(stack, UNBATCHED_SIGN_INS, "single", batch_size=1)
        latency = sign_in_latency(stack)
    finally:
        stack.stop()
    rates = [run["per_second"] for run in runs]
    return {
        "raw_upserts_per_second": statistics.median(raws),
        "batch_size": BaseConfig.WORKER_BATCH_SIZE,
        "persisted_per_second": statistics.median(rates),
        "persisted_per_second_runs": rates,
        "worker_wall_seconds": statistics.median(run["wall_seconds"] for run in runs),
        # Each worker run against the raw upserts measured right before it.
        "ratio_to_raw": statistics.median(rate / raw for rate, raw in zip(rates, raws, strict=True)),
        "unbatched_persisted_per_second": unbatched["per_second"],
        "sign_in_unlocked_ms": latency["unlocked_ms"],
        "sign_in_locked_ms": latency["locked_ms"],
        "sign_in_locked_ratio": latency["ratio"],
    }


def run() -> dict[str, Any]:
    """Both databases, each in a fresh deployment."""
    figures: dict[str, Any] = {"sign_ins": SIGN_INS, "raw_upserts": RAW}
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-persistence-") as folder:
        figures["sqlite"] = measure(Path(folder) / "sqlite", None)
        cluster: PostgresCluster = start_cluster()
        try:
            figures["postgresql"] = measure(Path(folder) / "postgresql", cluster.create_database("bench"))
        finally:
            cluster.destroy()
    return figures


def shown_value(value: Any, form: str) -> str:
    """One cell of the table (a list of runs as its values, one after another)."""
    if isinstance(value, list):
        return "/".join(f"{item:.0f}" for item in value)
    return form.format(value)


def print_report(figures: dict[str, Any]) -> None:
    """The table, then the JSON line."""
    rows = [
        ("raw single-row upsert transactions/s", "raw_upserts_per_second", "{:,.0f}"),
        (f"persisted sign-ins/s, one worker ({figures['sign_ins']:,} queued)", "persisted_per_second", "{:,.0f}"),
        ("  each run", "persisted_per_second_runs", "{}"),
        ("  ÷ raw upserts/s", "ratio_to_raw", "{:.2f}"),
        ("  worker wall time, start-up included (s)", "worker_wall_seconds", "{:.1f}"),
        ("  batch size (WORKER_BATCH_SIZE)", "batch_size", "{}"),
        (
            f"persisted/s, WORKER_BATCH_SIZE=1 ({UNBATCHED_SIGN_INS} queued)",
            "unbatched_persisted_per_second",
            "{:,.0f}",
        ),
        ("sign-in, database unlocked (ms, median)", "sign_in_unlocked_ms", "{:.1f}"),
        ("sign-in, database locked (ms, median)", "sign_in_locked_ms", "{:.1f}"),
        ("  locked ÷ unlocked", "sign_in_locked_ratio", "{:.2f}"),
    ]
    print(f"{'':<52} {'SQLite':>12} {'PostgreSQL':>12}")
    for label, key, form in rows:
        shown = [shown_value(figures[database][key], form) for database in ("sqlite", "postgresql")]
        print(f"{label:<52} {shown[0]:>12} {shown[1]:>12}")
    print(json.dumps({"bench": "persistence", **figures}, sort_keys=True))


def main() -> None:
    """Measure and print."""
    print_report(run())


if __name__ == "__main__":
    main()
