"""The RQ worker process: `flask --app app worker`.

The app is built by `create_app` (through the Flask CLI) before the worker starts,
never at import. Ready jobs of batchable functions, up to WORKER_BATCH_SIZE at a time and
alone too (jobs/batch.py), run in the worker's standing work horse (jobs/horse.py), a process
forked once that keeps its database connection from batch to batch; any other job runs in a
work horse forked for it, as RQ runs jobs. Either runs inside a fresh app context. Which
functions it runs, batches and runs periodically comes from the app's job registry
(jobs/registry.py).

Recovery times are bounded by settings rather than RQ's defaults (a dead worker's
job would otherwise stay "started" for up to ten minutes):
- a work horse that dies mid-job is noticed at once by its worker, and the job is
  retried (the first retry is immediate: JOB_RETRY_INTERVALS starts with 0);
- a worker that dies stops heartbeating its job, which counts as abandoned
  WORKER_MONITOR_INTERVAL + WORKER_ABANDON_GRACE seconds after the last heartbeat
  and is retried by the next maintenance run of any worker (every
  WORKER_MAINTENANCE_INTERVAL seconds; idle workers wake up for it).
Maintenance also drains the job outbox (jobs/outbox.py). An outage of the queue's Redis
pauses the worker instead of ending it (jobs/outage.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import click
from flask import Flask
from redis import Redis
from redis.exceptions import AuthenticationError, AuthorizationError, RedisError
from rq import Queue
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job
from rq.scheduler import RQScheduler
from sqlalchemy.exc import SQLAlchemyError

from connections import worker_redis
from extensions import db
from jobs.batch import BatchingWorker
from jobs.outage import REDIS_GONE, OutageTolerantWorker
from jobs.outbox import drain_outbox
from jobs.queues import QUEUES, SERIALIZER, GatehouseJob, put_on_queue
from jobs.registry import job_registry
from logs import request_id_context
from metrics.process import enter_work_horse

log = logging.getLogger(__name__)

# The only maxmemory-policy under which Redis never drops a queued job to free memory.
SAFE_EVICTION_POLICY = "noeviction"
# A worker started while the queue's Redis does not answer tries again after 0.25 s, doubling up to this.
START_RETRY_MAX_SECONDS = 5.0


class UnsafeQueueRedis(click.ClickException):
    """The queue's Redis could silently drop jobs, or cannot be checked."""


class AppScheduler(RQScheduler):
    """RQ's scheduler (it puts retried jobs back on the queue), connecting as the worker does.

    RQ rebuilds the scheduler's connection from the worker's pool settings, and a Sentinel-managed
    connection cannot be rebuilt that way (it needs its pool, which asks Sentinel for the primary).
    """

    connect: Callable[[], Redis]

    @property
    def connection(self) -> Redis:
        """The scheduler's own connection, made on first use (in its process, after the fork)."""
        connection: Redis | None = self._connection
        if connection is None:
            connection = self._connection = self.connect()  # type: ignore[assignment]  # RQ types it as None
        return connection


class AppWorker(OutageTolerantWorker, BatchingWorker):
    """An RQ worker whose work horses run each job (or batch of jobs) inside the Flask app's context.

    It outlives an outage of the queue's Redis (jobs/outage.py) and runs ready jobs of batchable
    functions in batches (jobs/batch.py).
    """

    app: Flask
    # Makes another connection like the worker's own (for the scheduler's process).
    connect: Callable[[], Redis]
    # Seconds a running job's heartbeat may be late before it counts as abandoned.
    abandon_grace: int = 10
    # RQ backs off up to 60 s between reconnection attempts while Redis is down;
    # a few seconds keeps the delay after Redis returns short (an attempt is cheap).
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # When this worker next runs each periodic task, by name (monotonic clock; absent: at its first maintenance).
        self.next_periodic: dict[str, float] = {}

    @property
    def dequeue_timeout(self) -> int:
        """Wake up from an idle wait often enough to run maintenance on time."""
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval // 3))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a job stays "started" without a heartbeat (RQ adds a fixed 60 s; we add our grace)."""
        until_next = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            until_next = min(job.timeout - working_time, until_next)
        return max(1, int(until_next)) + self.abandon_grace

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own start of the scheduler, with an `AppScheduler` that connects as this worker does."""
        scheduler = AppScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        scheduler.connect = self.connect
        self.scheduler = scheduler
        scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if not scheduler.acquired_locks:
            return
        if burst:
            try:
                scheduler.register_birth()
                scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            finally:
                scheduler.release_locks()  # type: ignore[no-untyped-call]
                scheduler.register_death()
        else:
            scheduler.start()  # type: ignore[no-untyped-call]

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleanup (which retries abandoned jobs), drain the job outbox, then the periodic tasks."""
        super().run_maintenance_tasks()
        self.drain_outbox()
        self.run_periodic_tasks()

    def run_periodic_tasks(self) -> None:
        """Each of the registry's periodic tasks that is due (the first maintenance run does them all)."""
        for task in self.registry.periodic:
            if time.monotonic() < self.next_periodic.get(task.name, 0.0):
                continue
            with self.app.app_context():
                try:
                    task.run()
                except (SQLAlchemyError, RedisError) as error:
                    # Tried again at the next maintenance run.
                    log.warning("%s not done: %s", task.name, type(error).__name__)
                    continue
            self.next_periodic[task.name] = time.monotonic() + task.every_seconds

    def drain_outbox(self) -> int:
        """Move jobs the web could not enqueue from the SQL outbox onto the queue."""
        with self.app.app_context():
            try:
                return drain_outbox(put_on_queue)
            except (SQLAlchemyError, RedisError) as error:
                # Retried at the next maintenance run; the worker keeps working meanwhile.
                log.warning("outbox not drained: %s: %s", type(error).__name__, error)
                return 0

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run one job in the work horse, inside an app context and its request's id (RQ's own lines too)."""
        enter_work_horse(self)
        request_id = job.request_id if isinstance(job, GatehouseJob) else None
        with self.app.app_context(), request_id_context(request_id):
            # Pooled connections copied through fork() belong to the parent process.
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)

    def horse_ready(self) -> None:
        """Once in each new work horse: its metrics files, and none of the pooled connections fork() copied."""
        super().horse_ready()
        enter_work_horse(self)
        with self.app.app_context():
            # Those connections belong to the worker (it drains the outbox with them); a horse opens
            # its own, and the standing horse keeps them from batch to batch.
            db.engine.dispose(close=False)

    def run_batch(self, work: Sequence[tuple[str, Any]]) -> None:
        """Run a batch in the standing horse inside a fresh app context: each function's arguments in one
        go, in the order the registry lists the functions (users are persisted before their audit events)."""
        with self.app.app_context():
            for spec in self.registry.specs:
                arguments = [argument for name, argument in work if self.registry.spec(name) is spec]
                if arguments and spec.batch is not None:
                    spec.batch(arguments)

    def batch_finished(self, jobs: list[Job]) -> None:
        """Each job of a batch gets the line a single job logs, with the id of the request that queued it."""
        for job in jobs:
            with request_id_context(job.request_id if isinstance(job, GatehouseJob) else None):
                log.info("%s finished (job %s, in a batch)", (job.func_name or "").rpartition(".")[2], job.id)


def check_eviction_policy(connection: Redis) -> None:
    """Refuse a queue Redis whose maxmemory-policy may evict keys (and with them, jobs)."""
    try:
        # INFO works where CONFIG is disabled (managed Redis services).
        policy = connection.info("memory").get("maxmemory_policy")
    except RedisError as error:
        raise UnsafeQueueRedis(f"cannot reach the queue Redis to check its settings: {error}") from error
    if policy != SAFE_EVICTION_POLICY:
        raise UnsafeQueueRedis(
            f"the queue Redis has maxmemory-policy {policy!r}, which lets Redis silently delete queued jobs "
            f"when memory runs short. Set `maxmemory-policy {SAFE_EVICTION_POLICY}` on that Redis "
            "(or point QUEUE_REDIS_URL at one that has it); see docs/reliability.md."
        )


class QueueRedisUnreachable(click.ClickException):
    """`worker --burst` was started while the queue's Redis does not answer."""


class QueueRedisRefused(click.ClickException):
    """The queue's Redis answers but refuses the worker's credentials: a setting to fix, not an outage to wait out."""


def build_worker_once_reachable(app: Flask, *, name: str | None = None, wait: bool = True) -> AppWorker:
    """`build_worker`, once the queue's Redis answers: a worker started during an outage waits for it.

    RQ's Worker connects as it is built, before the outage handling of jobs/outage.py can take over,
    so a worker that a supervisor starts before Redis, or restarts during an outage, would die with a
    raw traceback. It says once what it waits for, and starts when Redis is back. With `wait` False
    (`--burst`: a one-off run) it stops at once with that message (exit code 1). A wrong password or
    ACL user stops it at once too (redis-py raises those as connection errors).
    """
    delay, waiting_since = 0.25, None
    while True:
        try:
            worker = build_worker(app, name=name)
        except (AuthenticationError, AuthorizationError) as error:
            raise QueueRedisRefused(
                f"the queue Redis (QUEUE_REDIS_URL) refused the worker's credentials: {error}"
            ) from None
        except REDIS_GONE as error:
            if not wait:
                raise QueueRedisUnreachable(f"the queue Redis (QUEUE_REDIS_URL) does not answer: {error}") from None
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.warning("Worker: the queue Redis (QUEUE_REDIS_URL) does not answer (%s); waiting for it", error)
            time.sleep(delay)
            delay = min(delay * 2, START_RETRY_MAX_SECONDS)
            continue
        if waiting_since is not None:
            # A warning like the one it answers: logging below warnings is set up only once the worker runs.
            waited = time.monotonic() - waiting_since
            log.warning("Worker %s: the queue Redis answers after %.0f s; starting", worker.name, waited)
        return worker


def build_worker(app: Flask, *, name: str | None = None) -> AppWorker:
    """A worker on Gatehouse's queues, with its own Redis connection and Gatehouse's timings.

    Blocking dequeues need a socket without the web's short timeout, so the worker
    does not share the web's Redis client.
    """
    config = app.config

    def connect() -> Redis:
        return worker_redis(
            config["QUEUE_REDIS_URL"], config["REDIS_SENTINEL_PASSWORD"] or None, config["REDIS_TLS_CA_FILE"] or None
        )

    connection = connect()
    worker = AppWorker(
        [Queue(name, connection=connection, serializer=SERIALIZER, job_class=GatehouseJob) for name in QUEUES],
        connection=connection,
        name=name,
        serializer=SERIALIZER,
        job_class=GatehouseJob,
        # RQ would log every job's arguments (e-mail addresses, names) as it starts it.
        log_job_description=False,
        job_monitoring_interval=app.config["WORKER_MONITOR_INTERVAL"],
        maintenance_interval=app.config["WORKER_MAINTENANCE_INTERVAL"],
    )
    worker.abandon_grace = app.config["WORKER_ABANDON_GRACE"]
    worker.registry = job_registry(app)
    worker.connect = connect
    worker.batch_size = app.config["WORKER_BATCH_SIZE"]
    worker.app = app
    return worker
