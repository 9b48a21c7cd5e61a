"""Many persistence jobs in one work horse and one transaction (WORKER_BATCH_SIZE).

Every sign-in stays its own RQ job, so status, retries and failures stay per job. What a
batch saves is the cost around each job: a transaction and a dozen Redis round trips of
bookkeeping. A batch may hold a single job: a ready job of a batchable function always takes
this path, so that it runs in the worker's standing work horse (jobs/horse.py), forked once
and kept with its database connection, instead of a horse forked for it alone.

1. After RQ dequeues a job of a batchable function (jobs/registry.py: persisting users, storing
   audit events), the worker moves up to WORKER_BATCH_SIZE - 1 more ready jobs from the queue
   to RQ's intermediate queue (one pipeline of LMOVEs, as many as the queue holds, never
   blocking). Jobs of any other function go back to the front of the queue, in order.
2. One transaction (MULTI) marks every job of the batch started, as RQ does for one job:
   an execution with a heartbeat in the started registry, status "started", and out of the
   intermediate queue.
3. The standing work horse runs `run_batch` (all upserts in one database transaction, every
   row published to the sessions Redis in one pipeline) and answers; the worker then marks
   every job finished in one MULTI. Meanwhile the worker keeps every job's heartbeat alive,
   as for one job.
4. If the batch fails with an error that says the database or Redis is away (or it timed
   out), every job of the batch fails and is retried by its own Retry policy. Any other
   error may be one bad record: a work horse forked for it then runs the jobs one at a time,
   RQ's own way, so that record fails alone (for good if it can never succeed) and the rest
   succeed. After either, the standing horse is let go and the next batch gets a new one,
   with new connections.

Killed at any point, nothing is lost: a job moved but not yet marked started is still in
RQ's intermediate queue, whose cleanup retries it; a started job is retried at once by its
worker if only the horse died, or by the abandoned-job cleanup once its heartbeat lapses if
the worker died too (a worker killed after its horse committed but before the finishing
MULTI leaves the jobs started, the same way); the finishing MULTI marks all jobs finished or
none. A job whose rows were committed but which was not marked finished runs again, which is
harmless: upserts are idempotent and guarded by versions.

Gatehouse's jobs have no dependents, callbacks, repeats or rate limits (put_on_queue never
sets them), so the batch's finishing transaction leaves those features of RQ out.
"""

from __future__ import annotations

import errno
import logging
import os
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.timeouts import BaseTimeoutException, HorseMonitorTimeoutException, JobTimeoutException
from rq.utils import as_text, now
from rq.worker import WorkerStatus
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

import metrics
from jobs.horse import HorseDied, Outcome, StandingHorse, outcome_of
from jobs.registry import JobRegistry

log = logging.getLogger(__name__)

# Errors that say nothing about the records: the database or a Redis is away, or the batch
# ran out of time. Every job of the batch is then retried; running them one by one would only
# meet the same outage once per job.
OUTAGES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    RedisError,
    BaseTimeoutException,
)

Batch = list[tuple[Job, Execution]]


class BatchingWorker(Worker):
    """An RQ worker that runs ready jobs of batchable functions in batches (see the module docstring)."""

    batch_size: int = 1
    # The app's job functions: which may be batched, and how (jobs/registry.py).
    registry: JobRegistry

    def batchable(self, job: Job) -> bool:
        """True for a well-formed job of a batchable function (one plain argument); False for anything else."""
        try:
            return self.registry.batchable(job.func_name) and len(job.args) == 1 and not job.kwargs
        except Exception:  # a payload that fails to load runs (and fails) the normal way
            return False

    def run_batch(self, work: Sequence[tuple[str, Any]]) -> None:
        """Run the (job name, argument) pairs of a batch in one go (in the work horse); raise on any failure."""
        raise NotImplementedError

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a dequeued job, with more ready batchable jobs if there are some."""
        if self.batch_size > 1 and self.batchable(job) and self._uses_intermediate_queue():
            # Alone too: a batch of one runs in the standing horse, without a fork of its own.
            jobs = [job, *self.take_more(queue, self.batch_size - 1)]
            self.execute_batch(self.mark_started(jobs, queue), queue)
            return
        super().execute_job(job, queue)

    def _uses_intermediate_queue(self) -> bool:
        # RQ dequeues through its intermediate queue (whose cleanup recovers jobs lost between
        # dequeue and start) only from one queue on Redis 6.2 or later.
        return len(self.queues) == 1 and self.get_redis_server_version() >= (6, 2, 0)  # type: ignore[no-untyped-call]

    def take_more(self, queue: Queue, count: int) -> list[Job]:
        """Move up to `count` more ready batchable jobs to the intermediate queue, without waiting."""
        # As many moves as the queue holds: a quiet queue costs one LLEN, not `count` LMOVEs. Jobs
        # queued after the LLEN wait for the next batch; a job another worker takes meanwhile is a
        # move that finds nothing.
        count = min(count, int(self.connection.llen(queue.key)))
        if count <= 0:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for _ in range(count):
                pipe.lmove(queue.key, queue.intermediate_queue_key)
            ids = [as_text(moved) for moved in pipe.execute() if moved is not None]
        if not ids:
            return []
        fetched = self.job_class.fetch_many(ids, connection=self.connection, serializer=self.serializer)
        taken = [job for job in fetched if job is not None and self.batchable(job)]
        missing = [job_id for job_id, job in zip(ids, fetched, strict=True) if job is None]
        others = [job.id for job in fetched if job is not None and not self.batchable(job)]
        if missing or others:
            with self.connection.pipeline() as pipe:
                for job_id in missing:
                    pipe.lrem(queue.intermediate_queue_key, 1, job_id)  # its data expired: nothing to run
                for job_id in reversed(others):
                    pipe.lrem(queue.intermediate_queue_key, 1, job_id)
                    pipe.lpush(queue.key, job_id)  # back to the front, in their order
                pipe.execute()
        return taken

    def mark_started(self, jobs: list[Job], queue: Queue) -> Batch:
        """Mark every job started in one transaction (RQ's prepare_execution and prepare_job_execution)."""
        batch: Batch = []
        with self.connection.pipeline() as pipe:
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            ttl = max(self.get_heartbeat_ttl(job) for job in jobs)
            self.heartbeat(ttl, pipeline=pipe)
            for job in jobs:
                job.redis_server_version = self.get_redis_server_version()  # type: ignore[no-untyped-call]
                execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
                self.executions[execution.id] = execution
                job.prepare_for_execution(self.name, pipeline=pipe)  # its heartbeat too
                pipe.persist(job.key)
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                batch.append((job, execution))
            pipe.execute()
        self.log.info("Worker %s: %s: batch of %d jobs", self.name, queue.name, len(batch))
        return batch

    # The worker's side: hand the batch to the standing horse, keep heartbeats, notice a dead horse.

    def standing_horse(self) -> StandingHorse:
        """This worker's standing horse (forked at the first batch that needs it)."""
        horse: StandingHorse | None = getattr(self, "_standing_horse", None)
        if horse is None:
            horse = self._standing_horse = StandingHorse(self.horse_ready, self.run_in_horse)
        return horse

    def execute_batch(self, batch: Batch, queue: Queue) -> None:
        """Run the batch in the standing horse and watch over it; finish, fail or recover its jobs."""
        started = now()
        for job, _execution in batch:
            job.started_at = started
        timeout = max(job.timeout or self.queue_class.DEFAULT_TIMEOUT for job, _ in batch)
        horse = self.standing_horse()
        try:
            horse.send((timeout, [(job.func_name or "", job.args[0]) for job, _ in batch]))
            # RQ's cold shutdown and stop-job command kill `horse_pid`'s group.
            self._horse_pid = horse.pid
            self.procline(f"Batch of {len(batch)} in horse {horse.pid}")  # type: ignore[no-untyped-call]
            outcome, error, detail = self.watch_standing_horse(batch, horse)
        except HorseDied as died:
            self._batch_over(batch)
            self.recover_batch(batch, queue, died.status)
            self.set_state(WorkerStatus.IDLE)
            return
        except BaseException:
            # The queue's Redis went away mid-batch (jobs/outage.py), or the worker is stopping: the
            # horse ends its batch first (bounded by its timeout), so no two horses ever run at once.
            self._batch_over(batch)
            horse.stop()
            raise
        self._batch_over(batch)
        if outcome == "ok":
            metrics.persisted_jobs(job for job, _ in batch if self._measured(job))
            self.finish_batch(batch, queue)
        else:
            horse.stop()  # the next batch gets a new horse, with new connections
            if outcome == "outage":
                log.warning("batch of %d jobs failed (%s): each is retried", len(batch), error)
                self.fail_batch(batch, queue, detail)
            else:  # maybe one bad record: find it by running them alone
                log.warning("batch of %d jobs failed (%s): running them one by one", len(batch), error)
                self.run_one_by_one(batch, queue)
        self.set_state(WorkerStatus.IDLE)

    def _batch_over(self, batch: Batch) -> None:
        self._horse_pid = 0
        for _job, execution in batch:
            self.executions.pop(execution.id, None)

    def batch_time_limit(self, batch: Batch) -> float:
        """Seconds after which the worker kills the horse: the batch, then each job alone, may use its timeout."""
        timeout = max(job.timeout or self.queue_class.DEFAULT_TIMEOUT for job, _ in batch)
        return float(timeout) * (1 + len(batch)) + 60

    def watch_standing_horse(self, batch: Batch, horse: StandingHorse) -> Outcome:
        """Wait for the horse's answer, heartbeating every job; kill it if it outlives the batch's timeout."""
        started = now()
        # The horse runs the batch under its own timeout; this is the backstop (RQ's: timeout + 60 s).
        limit = max(job.timeout or self.queue_class.DEFAULT_TIMEOUT for job, _ in batch) + 60
        while True:
            outcome = horse.wait(self.job_monitoring_interval)
            if outcome is not None:
                return outcome
            if (now() - started).total_seconds() > limit:
                self.heartbeat(self.job_monitoring_interval + 60)
                raise HorseDied(horse.kill())
            self.maintain_batch_heartbeats(batch)

    def teardown(self) -> None:
        """RQ's teardown; the standing horse is let go first (it is idle between batches)."""
        horse: StandingHorse | None = getattr(self, "_standing_horse", None)
        if horse is not None and not self.is_horse:
            horse.stop()
        super().teardown()  # type: ignore[no-untyped-call]

    # A batch that failed for another reason than an outage: its jobs one by one, in a horse of their own.

    def run_one_by_one(self, batch: Batch, queue: Queue) -> None:
        """Fork a work horse that runs the batch's jobs one at a time, RQ's own way, and watch over it."""
        child = os.fork()
        if child == 0:
            os.setpgrp()
            self.main_batch_horse(batch, queue)
            os._exit(0)  # just in case
        self._horse_pid = child
        self.procline(f"Forked {child} for a batch of {len(batch)}, one by one")  # type: ignore[no-untyped-call]
        self.monitor_batch_horse(batch, queue)

    def monitor_batch_horse(self, batch: Batch, queue: Queue) -> None:
        """Wait for the horse, heartbeating every job of the batch; then recover the jobs it left started."""
        started = now()
        limit = self.batch_time_limit(batch)
        ret_val: int | None = None
        while True:
            try:
                with self.death_penalty_class(self.job_monitoring_interval, HorseMonitorTimeoutException):
                    _pid, ret_val, _usage = self.wait_for_horse()
                break
            except HorseMonitorTimeoutException:
                if (now() - started).total_seconds() > limit:
                    self.heartbeat(self.job_monitoring_interval + 60)
                    self.kill_horse()
                    self.wait_for_horse()
                    ret_val = None
                    break
                self.maintain_batch_heartbeats(batch)
            except OSError as error:
                # EINTR: a signal (SIGTERM asks for a warm shutdown) interrupted the wait.
                if error.errno != errno.EINTR:
                    raise
                self.heartbeat()
        self._batch_over(batch)
        if ret_val != os.EX_OK:
            self.recover_batch(batch, queue, ret_val)

    def maintain_batch_heartbeats(self, batch: Batch) -> None:
        """Extend the worker's and every job's heartbeat in one round trip."""
        with self.connection.pipeline() as pipe:
            self.heartbeat(self.job_monitoring_interval + 60, pipeline=pipe)
            for job, execution in batch:
                working = (now() - job.started_at).total_seconds() if job.started_at else 0.0
                ttl = self.get_heartbeat_ttl(job, working_time=working)
                execution.heartbeat(job.started_job_registry, ttl, pipeline=pipe)
                job.heartbeat(now(), ttl, pipeline=pipe, xx=True)
            pipe.execute()

    def recover_batch(self, batch: Batch, queue: Queue, ret_val: int | None) -> None:
        """The horse died: fail (and so retry) every job of the batch it left started."""
        with self.connection.pipeline() as pipe:
            for job, _execution in batch:
                pipe.hget(job.key, "status")
            statuses = [as_text(status) if status else None for status in pipe.execute()]
        reason = f"Work-horse terminated unexpectedly during a batch of {len(batch)}; waitpid returned {ret_val}"
        log.warning("Worker %s: %s", self.name, reason)
        for (job, execution), status in zip(batch, statuses, strict=True):
            if status != JobStatus.STARTED:
                continue  # finished, failed or already retried by the horse
            job.ended_at = now()
            if self._stopped_job_id == job.id:
                self._handle_stopped_job(job, queue, execution)
            else:
                self.handle_job_failure(job, queue=queue, exc_string=reason, execution=execution)

    # The work horses' side.

    def horse_ready(self) -> None:
        """Runs once in a new work horse, before its first job or batch (subclasses drop inherited pools)."""
        random.seed()
        self._is_horse = True

    def run_in_horse(self, message: tuple[int, Sequence[tuple[str, Any]]]) -> Outcome:
        """In the standing horse: one batch, under its timeout (the job timeout's death penalty)."""
        timeout, work = message

        def run() -> None:
            with self.death_penalty_class(timeout, JobTimeoutException):
                self.run_batch(work)

        return outcome_of(run, OUTAGES)

    def main_batch_horse(self, batch: Batch, queue: Queue) -> None:
        """The forked work horse of a failed batch: its jobs one at a time, then exit (os._exit, as RQ's horse)."""
        self.setup_work_horse_signals()  # type: ignore[no-untyped-call]
        try:
            self.horse_ready()
            for job, execution in batch:
                self.perform_job(job, queue, execution)
        except BaseException:  # the worker recovers every job left started
            log.exception("Worker %s: batch horse failed", self.name)
            os._exit(1)
        os._exit(0)

    def _measured(self, job: Job) -> bool:
        spec = self.registry.spec(job.func_name)
        return spec is not None and spec.measured

    def finish_batch(self, batch: Batch, queue: Queue) -> None:
        """Mark every job of the batch finished, in one transaction (RQ's handle_job_success for each)."""
        ended = now()
        with self.connection.pipeline() as pipe:
            # The worker's counters, once for the whole batch.
            pipe.hincrby(self.key, "successful_job_count", len(batch))
            self.increment_total_working_time(
                sum((ended - (job.started_at or ended) for job, _ in batch), timedelta()), pipe
            )
            for job, execution in batch:
                job.ended_at = ended
                job._result = None
                job._status = JobStatus.FINISHED
                result_ttl = job.get_result_ttl(self.default_result_ttl)
                job._handle_success(
                    result_ttl,
                    pipeline=pipe,
                    worker_name=self.name,
                    execution_id=execution.id,
                    execution_started_at=execution.created_at,
                    execution_ended_at=ended,
                )
                job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
                self.cleanup_execution(job, pipeline=pipe, execution=execution)
            pipe.execute()
        self.log.info("Worker %s: %s: batch of %d jobs OK", self.name, queue.name, len(batch))
        self.batch_finished([job for job, _ in batch])

    def batch_finished(self, jobs: list[Job]) -> None:
        """Called once the jobs of a batch are marked finished (for their log lines)."""

    def fail_batch(self, batch: Batch, queue: Queue, exc_string: str) -> None:
        """Fail every job of the batch with the batch's error (its traceback): each is retried per its Retry policy.

        The error was raised in the horse, so RQ's custom exception handlers (Gatehouse sets none)
        are not called; RQ's own failure handling (the traceback kept with a job that fails for good) is.
        """
        for job, execution in batch:
            job.ended_at = now()
            job._status = JobStatus.FAILED
            self.handle_job_failure(job, queue=queue, exc_string=exc_string, execution=execution)
