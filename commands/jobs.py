"""`flask --app app jobs …`: see the job queue and outbox, drain the outbox, retry failed jobs."""

from __future__ import annotations

import json
import re
from typing import Any

import click
from flask.cli import AppGroup
from redis.exceptions import RedisError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from jobs.outbox import drain_outbox, outbox_count
from jobs.queues import job_queue, put_on_queue, retry_intervals
from jobs.status import job_counts

jobs_cli = AppGroup("jobs", help="Inspect the job queue and outbox; drain the outbox; retry failed jobs.")

# What each count means, in the order `status` prints them.
COUNTS = {
    "queued": "waiting for a worker (or taken by one that has not started them yet)",
    "started": "running now (or abandoned by a dead worker, until maintenance retries them)",
    "scheduled": "waiting for their next retry",
    "failed": "out of retries: see below, then `jobs requeue-failed`",
    "outbox": "refused by the queue, kept in the database until drained",
}


# The line of a traceback that names the exception: "package.module.SomeError: message".
EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*\w+: ")


def error_summary(error: str | None) -> str:
    """The line of a traceback that says what went wrong (the last exception raised)."""
    lines = (error or "").strip().splitlines()
    named = [line for line in lines if EXCEPTION_LINE.match(line)]
    return (named or lines or ["no error recorded"])[-1]


def failed_jobs(limit: int) -> list[dict[str, Any]]:
    """The most recent failed jobs with the error that failed them."""
    queue = job_queue()
    ids = FailedJobRegistry(queue=queue).get_job_ids(0, limit - 1, desc=True, cleanup=False) if limit > 0 else []
    listed = []
    for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer):
        if job is None:
            continue
        result = job.latest_result()
        error = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
        listed.append(
            {
                "id": job.id,
                "function": job.func_name,
                "ended_at": job.ended_at.isoformat() if job.ended_at else None,
                "error": (error or "").strip() or None,
            }
        )
    return listed


@jobs_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: counts and recent failures.")
@click.option("--failures", default=5, show_default=True, help="How many recent failed jobs to list.")
def status(as_json: bool, failures: int) -> None:
    """Show queued, started, scheduled, failed and outbox counts, and recent failures."""
    counts = job_counts()
    try:
        recent = failed_jobs(failures)
    except RedisError:
        recent = []
    if as_json:
        click.echo(json.dumps({"counts": counts, "failures": recent}))
    else:
        for state, meaning in COUNTS.items():
            shown = "unavailable" if counts[state] is None else str(counts[state])
            click.echo(f"{state:<10} {shown:>11}  {meaning}")
        for job in recent:
            click.echo(f"\nfailed {job['id']}  {job['function']}  {job['ended_at'] or ''}")
            click.echo(f"  {error_summary(job['error'])}")
    if any(count is None for count in counts.values()):
        raise click.ClickException("some counts are unavailable: the queue Redis or the database is down")


@jobs_cli.command("drain")
def drain() -> None:
    """Put every job waiting in the outbox onto the queue now."""
    try:
        moved = drain_outbox(put_on_queue)
    except RedisError as error:
        message = f"the queue is still unavailable ({error}); the remaining jobs stay in the outbox"
        raise click.ClickException(message) from error
    click.echo(f"moved {moved} job(s) from the outbox to the queue; {outbox_count()} left")


@jobs_cli.command("requeue-failed")
def requeue_failed() -> None:
    """Put every failed job back on the queue, with a fresh set of retries."""
    queue = job_queue()
    registry = FailedJobRegistry(queue=queue)
    intervals = retry_intervals()
    job_ids = registry.get_job_ids(cleanup=False)
    requeued = 0
    with click.progressbar(job_ids, label="Requeueing failed jobs", show_pos=True) as progress:
        for job_id in progress:
            try:
                job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
                job.retries_left, job.retry_intervals = len(intervals), intervals
                job.save()
                registry.requeue(job)
            except NoSuchJobError:
                # Its data expired: nothing left to run.
                registry.remove(job_id)
                continue
            except InvalidJobOperation:
                continue  # someone else requeued it meanwhile
            requeued += 1
    click.echo(f"requeued {requeued} of {len(job_ids)} failed job(s)")
