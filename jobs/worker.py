"""The RQ worker process: `flask --app app worker`.

The app is built by `create_app` (through the Flask CLI) before the worker starts,
never at import. Each job runs in a forked work horse inside a fresh app context.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job

from extensions import db
from jobs.queues import QUEUES


class AppWorker(Worker):
    """An RQ worker whose work horses run each job inside the Flask app's context."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run one job in the work horse, inside an app context."""
        with self.app.app_context():
            # Pooled connections copied through fork() belong to the parent process.
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)


def build_worker(app: Flask, *, name: str | None = None) -> AppWorker:
    """A worker on Gatehouse's queues, with its own Redis connection.

    Blocking dequeues need a socket without the web's short timeout, so the worker
    does not share the web's Redis client.
    """
    connection = Redis.from_url(app.config["QUEUE_REDIS_URL"], socket_connect_timeout=5, health_check_interval=30)
    worker = AppWorker(
        [Queue(name, connection=connection) for name in QUEUES],
        connection=connection,
        name=name,
    )
    worker.app = app
    return worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@with_appcontext
def worker_command(burst: bool, name: str | None) -> None:
    """Run a job worker (with RQ's scheduler, which retries need)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    build_worker(app, name=name).work(burst=burst, with_scheduler=True, logging_level="INFO")
