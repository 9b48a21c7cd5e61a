"""The durable job outbox: where a job goes when the queue cannot take it.

`enqueue` (jobs/queues.py) writes a row here only when Redis refuses the job, in
the same request, so an accepted sign-in or profile edit is never lost. Workers
drain the outbox during their periodic maintenance and `flask --app app jobs
drain` does it on demand. A row is deleted only after its job is on the queue; a
crash in between enqueues it twice, which is harmless because jobs are idempotent.
A row keeps the id of the request that queued the job, and the drained job carries it
in its meta as if the queue had taken it at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis.exceptions import RedisError
from sqlalchemy import delete, func, insert, select

from extensions import db
from jobs.registry import job_registry
from logs import current_request_id, request_id_context, safe_request_id
from models.outbox import OutboxJob

log = logging.getLogger(__name__)

DRAIN_BATCH = 200

PutOnQueue = Callable[..., Any]


def job_name(function: Callable[..., Any]) -> str:
    """The "module:function" name a row stores."""
    return f"{function.__module__}:{function.__qualname__}"


def resolve_job(name: str) -> Callable[..., Any]:
    """The job function a row names ("module:function", current or former); ValueError for any other."""
    module_name, _, attribute = name.partition(":")
    return job_registry().function(f"{module_name}.{attribute}")


def save_to_outbox(function: Callable[..., Any], args: Sequence[Any], error: BaseException) -> None:
    """Keep a job the queue refused, in its own short transaction."""
    row = {
        "func": job_name(function),
        "args": list(args),
        # The job's meta would have carried it (jobs/queues.py); the row keeps it until the drain.
        "request_id": safe_request_id(current_request_id()),
        "error": f"{type(error).__name__}: {error}"[:1000],
    }
    with db.engine.begin() as connection:
        connection.execute(insert(OutboxJob).values(**row))


def outbox_count() -> int:
    """How many jobs wait in the outbox."""
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OutboxJob)).scalar_one())


def drain_outbox(put_on_queue: PutOnQueue, *, limit: int | None = None) -> int:
    """Move waiting jobs onto the queue, oldest first; returns how many moved.

    Stops at the first RedisError (the queue is still down: the rest stay for the
    next drain) after deleting the rows already moved. Rows naming an unknown
    job are logged and left in place for an operator to inspect.
    """
    moved = 0
    skipped: set[int] = set()
    while limit is None or moved < limit:
        batch = DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - moved)
        seen, done, refused = _drain_batch(put_on_queue, batch, skipped)
        moved += done
        if refused is not None:
            raise refused
        if seen == 0:
            return moved
    return moved


def _drain_batch(put_on_queue: PutOnQueue, size: int, skipped: set[int]) -> tuple[int, int, RedisError | None]:
    """One transaction: lock a batch (others skip it on PostgreSQL), enqueue, delete what was enqueued."""
    query = (
        select(OutboxJob.id, OutboxJob.func, OutboxJob.args, OutboxJob.request_id).order_by(OutboxJob.id).limit(size)
    )
    if skipped:
        query = query.where(OutboxJob.id.not_in(skipped))
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    done: list[int] = []
    refused: RedisError | None = None
    with db.engine.begin() as connection:
        # A Row is a tuple; typed here for the unpacking below (Result.tuples() is deprecated in SQLAlchemy 2.1).
        rows = cast(Sequence[tuple[int, str, list[Any], str | None]], connection.execute(query).all())
        for row_id, name, args, request_id in rows:
            try:
                function = resolve_job(name)
            except ValueError as error:
                log.error("outbox row %s left in place: %s", row_id, error)
                skipped.add(row_id)
                continue
            try:
                # The job gets back its request's id (an old row has none; one not safe is dropped, as from a header).
                with request_id_context(request_id):
                    put_on_queue(function, *args)
            except RedisError as error:
                refused = error
                break
            done.append(row_id)
        if done:
            connection.execute(delete(OutboxJob).where(OutboxJob.id.in_(done)))
    if done:
        log.info("moved %d job(s) from the outbox to the queue", len(done))
    return len(rows), len(done), refused
