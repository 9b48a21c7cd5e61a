"""Queue names, the retry policy and the one helper that enqueues jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from rq import Queue, Retry
from rq.job import Job

from connections import queue_redis

DEFAULT_QUEUE = "gatehouse"
QUEUES = (DEFAULT_QUEUE,)

# Backoff for jobs that fail (database down, deadlock): about ten minutes in all.
RETRY_INTERVALS = [2, 5, 15, 30, 60, 120, 300]

_EXTENSION = "gatehouse.queue"


def init_queue(app: Flask) -> None:
    """Bind the app's job queue to its queue Redis (no connection is opened yet)."""
    app.extensions[_EXTENSION] = Queue(DEFAULT_QUEUE, connection=queue_redis(app))


def job_queue(app: Flask | None = None) -> Queue:
    """The queue web requests put persistence jobs on."""
    return (app or current_app).extensions[_EXTENSION]


def enqueue(func: Callable[..., Any], *args: Any) -> Job:
    """Put a job on the queue with Gatehouse's retry policy and timeouts."""
    return job_queue().enqueue(
        func,
        *args,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        job_timeout=current_app.config["JOB_TIMEOUT"],
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,  # failed jobs keep their error for a week
    )
