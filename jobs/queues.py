"""Queue names, the retry policy, the one helper that enqueues jobs, and how many wait for a worker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from connections import WriteNotReplicated, queue_redis
from jobs.outbox import save_to_outbox
from jobs.registry import job_registry
from logs import current_request_id, request_id_context, safe_request_id

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "gatehouse"
QUEUES = (DEFAULT_QUEUE,)
# Jobs are plain data, stored as JSON: RQ's default (pickle) would let whoever can write to the
# queue's Redis run code on every worker. Queue, worker and every job lookup use this.
SERIALIZER = JSONSerializer


class GatehouseJob(Job):
    """An RQ job that refuses to run anything but Gatehouse's own job functions."""

    @property
    def func(self) -> Callable[..., Any] | None:
        """The job function, only if the app's job registry knows its name (current or former)."""
        if self.instance is not None:
            raise ValueError(f"{self.func_name!r} is a method, not a Gatehouse job function; refusing to run it")
        return job_registry().function(self.func_name)

    @property
    def request_id(self) -> str | None:
        """The id of the request that queued this job (None if it came from elsewhere, or is not a safe id)."""
        return safe_request_id(self.meta.get(REQUEST_ID_META))

    def perform(self) -> Any:
        """Run the job; its log lines carry the id of the request that queued it."""
        with request_id_context(self.request_id):
            result = super().perform()
            log.info("%s finished (job %s)", (self.func_name or "?").rsplit(".", 1)[-1], self.id)
            return result


# job.meta key of the request id (logs.py): plain data beside the job, never an argument of its function.
REQUEST_ID_META = "request_id"

RESULT_TTL = 3600
FAILURE_TTL = 7 * 24 * 3600  # failed jobs keep their error for a week

_EXTENSION = "gatehouse.queue"


def init_queue(app: Flask) -> None:
    """Bind the app's job queue to its queue Redis (no connection is opened yet)."""
    app.extensions[_EXTENSION] = Queue(
        DEFAULT_QUEUE, connection=queue_redis(app), serializer=SERIALIZER, job_class=GatehouseJob
    )


def job_queue(app: Flask | None = None) -> Queue:
    """The queue web requests put persistence jobs on."""
    queue: Queue = (app or current_app).extensions[_EXTENSION]
    return queue


def waiting_count(queue: Queue) -> int:
    """Jobs waiting for a worker: on the queue, or taken off it by a worker that has not marked them started.

    A worker moves each job to RQ's intermediate queue before it marks it started (for about a
    millisecond; until RQ's cleanup puts it back, about a minute, if the worker died in between).
    Both lengths are read in one transaction, so a job moving between them is counted once.
    """
    with queue.connection.pipeline() as pipe:
        pipe.llen(queue.key)
        pipe.llen(queue.intermediate_queue_key)
        on_queue, taken = pipe.execute()
    return int(on_queue) + int(taken)


def retry_intervals(app: Flask | None = None) -> list[int]:
    """Delays before each retry of a failed job (JOB_RETRY_INTERVALS)."""
    return list((app or current_app).config["JOB_RETRY_INTERVALS"])


def put_on_queue(func: Callable[..., Any], *args: Any) -> Job:
    """Put a job on the queue with Gatehouse's retry policy and timeouts; raises RedisError.

    With QUEUE_REDIS_WAIT_REPLICAS set, the job counts as queued only once that many replicas have it
    (WAIT, on the connection that queued it): a failover to a replica cannot lose it. Otherwise
    WriteNotReplicated is raised, and `enqueue` keeps the job in the outbox as well (a job run
    twice is harmless: every Gatehouse job is idempotent).
    """
    return put_all_on_queue([(func, args)])[0]


JobCall = tuple[Callable[..., Any], tuple[Any, ...]]


def put_all_on_queue(calls: Sequence[JobCall]) -> list[Job]:
    """Put jobs on the queue in one round trip; raises RedisError.

    Without QUEUE_REDIS_WAIT_REPLICAS they go in one MULTI transaction: all or none, and a worker
    sees them all at once, so it takes them as one batch (jobs/batch.py). With it, WAIT must follow
    the jobs' writes on their own connection (it covers only that connection's writes) and does not
    block inside a MULTI, so the jobs and WAIT go in one plain pipeline, as the session store's
    writes do (sessions/scripts.py): Redis still runs them one after another. A connection lost
    halfway may leave some of the jobs queued while the caller keeps all of them in the outbox:
    those run twice, which is harmless (every Gatehouse job is idempotent).
    """
    config = current_app.config
    replicas = config["QUEUE_REDIS_WAIT_REPLICAS"]
    queue = job_queue()
    jobs_data = _jobs_data(calls)
    with queue.connection.pipeline(transaction=not replicas) as pipe:
        jobs = queue.enqueue_many(jobs_data, pipeline=pipe)
        if not replicas:
            pipe.execute()
            return jobs
        pipe.execute_command("WAIT", replicas, config["REDIS_WAIT_TIMEOUT_MS"])  # type: ignore[no-untyped-call]
        confirmed = int(pipe.execute()[-1])
    if confirmed < replicas:
        ids = ", ".join(job.id for job in jobs)
        raise WriteNotReplicated(f"{confirmed} of {replicas} replicas confirmed job(s) {ids} in time")
    return jobs


def _jobs_data(calls: Sequence[JobCall]) -> list[EnqueueData]:
    """Each call as RQ's enqueue_many takes it, with Gatehouse's retry policy, timeouts and the request's id."""
    intervals = retry_intervals()
    request_id = current_request_id()
    timeout = current_app.config["JOB_TIMEOUT"]
    return [
        Queue.prepare_data(
            func,
            args,
            meta={REQUEST_ID_META: request_id} if request_id else None,
            retry=Retry(max=len(intervals), interval=intervals),
            timeout=timeout,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
        for func, args in calls
    ]


def enqueue(func: Callable[..., Any], *args: Any) -> Job | None:
    """Queue a job; if the queue refuses it, keep it in the SQL outbox instead.

    The normal path touches only Redis. Only when Redis fails is the job written
    to the database (same request), from where workers re-enqueue it; the
    return value is then None. If the database fails too, that error propagates
    (the request answers 503) because the job could not be kept anywhere.

    Inside `queued_together`, the job is held and queued with the others at the block's end
    (None is returned), and it is there that such an error propagates.
    """
    held: list[JobCall] | None = g.get(_HELD)
    if held is not None:
        held.append((func, args))
        return None
    jobs = enqueue_all([(func, args)])
    return jobs[0] if jobs else None


def enqueue_all(calls: Sequence[JobCall]) -> list[Job]:
    """Queue jobs in one round trip; if the queue refuses them, keep each in the SQL outbox (returns [] then)."""
    try:
        return put_all_on_queue(calls)
    except RedisError as error:
        names = ", ".join(func.__qualname__ for func, _ in calls)
        log.warning("queue unavailable (%s); keeping %s in the outbox", type(error).__name__, names)
        for func, args in calls:
            save_to_outbox(func, args, error)
        return []


# flask.g attribute of the jobs a `queued_together` block holds.
_HELD = "gatehouse_held_jobs"


@contextmanager
def queued_together() -> Iterator[None]:
    """Hold the jobs enqueued inside the block, and queue them at its end in one round trip.

    A sign-in queues its user's persistence and its audit event: queued apart, an idle worker wakes
    for the first alone and pays its bookkeeping twice; queued together, it takes both as one batch.
    The held jobs are queued however the block ends, an exception included, as they would have been
    one by one. A block inside another one leaves the queuing to the outer block.
    """
    if g.get(_HELD) is not None:
        yield
        return
    held: list[JobCall] = []
    setattr(g, _HELD, held)
    try:
        yield
    finally:
        g.pop(_HELD, None)
        if held:
            enqueue_all(held)


def queue_answers(app: Flask | None = None) -> bool:
    """True when the queue's Redis answers (the readiness check asks this)."""
    try:
        return bool(job_queue(app).connection.ping())
    except RedisError:
        return False
