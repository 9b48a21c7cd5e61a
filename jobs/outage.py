"""A worker that outlives an outage of the queue's Redis.

RQ's work loop copes with a lost connection only while it waits for the next job: there it
retries with backoff. Anywhere else (at the end of a job or batch, between two jobs, in
maintenance) the error reaches the loop's catch-all, and the worker quits. Here those places
log and carry on instead. The wait for the next job then retries until Redis is back, and
RQ's own recovery takes care of the jobs that were running: a job left "started" is retried
once its heartbeat lapses, one left in the intermediate queue is put back by its cleanup. Every
Gatehouse job is idempotent (versioned upserts, audit events stored once by their id), so a job
that did its work but could not say so runs again harmlessly.
"""

from __future__ import annotations

import logging

from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job

log = logging.getLogger(__name__)

# What a Redis that has gone away raises (RQ's loop quits on either).
REDIS_GONE = (RedisConnectionError, RedisTimeoutError)


class OutageTolerantWorker(Worker):
    """An RQ worker that keeps running through a queue Redis outage (see the module docstring)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job; if Redis goes away meanwhile, let the work horse end, then wait for Redis."""
        try:
            super().execute_job(job, queue)
        except REDIS_GONE as error:
            log.warning(
                "Worker %s: lost the queue Redis during job %s (%s): it is recovered once Redis is back",
                self.name,
                job.id,
                type(error).__name__,
            )
            self.reap_horse()

    def reap_horse(self) -> None:
        """Wait for a work horse whose watch broke off, so no two horses ever run at once."""
        if self._horse_pid:
            self.wait_for_horse()  # RQ's wait: a horse already waited for is no error
            self._horse_pid = 0

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat; while Redis is away, none (the worker's next wait for a job retries)."""
        if pipeline is not None:  # only queued up: the pipeline's owner meets the error
            super().heartbeat(timeout, pipeline=pipeline)
            return
        try:
            super().heartbeat(timeout)
        except REDIS_GONE:
            log.debug("Worker %s: no heartbeat, the queue Redis is away", self.name)

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ's worker state (what `rq info` shows); while Redis is away, not recorded."""
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)
            return
        try:
            super().set_state(state)
        except REDIS_GONE:
            log.debug("Worker %s: state %s not recorded, the queue Redis is away", self.name, state)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's `rq suspend` check; while Redis is away, go on to the wait for a job, which retries."""
        try:
            super().check_for_suspension(burst)
        except REDIS_GONE:
            log.debug("Worker %s: suspension not checked, the queue Redis is away", self.name)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleanup; while Redis is away, skipped (it runs again at the next chance)."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except REDIS_GONE as error:
            log.warning("Worker %s: registries not cleaned: %s", self.name, type(error).__name__)
