"""`flask --app app worker`: the RQ worker process (jobs/worker.py), started through `create_app`."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from redis.exceptions import RedisError

from jobs.worker import build_worker_once_reachable, check_eviction_policy

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: a random id).")
@with_appcontext
def worker_command(burst: bool, name: str | None) -> None:
    """Run a job worker (with RQ's scheduler, which retries need); started during a queue Redis outage, it waits."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = build_worker_once_reachable(app, name=name, wait=not burst)
    check_eviction_policy(worker.connection)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    except RedisError:
        # RQ's own bookkeeping failed at start or stop (registering the worker's birth or death).
        # Logged, not left to Python's raw traceback, so LOG_FORMAT=json stays one object per line.
        log.exception("Worker %s: stopped on a queue Redis error", worker.name)
        raise SystemExit(1) from None
