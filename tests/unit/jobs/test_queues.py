"""`waiting_count`: the jobs waiting for a worker, including those a worker took but has not started."""

from __future__ import annotations

import fakeredis
import pytest
from rq import Queue

from jobs.queues import DEFAULT_QUEUE, SERIALIZER, waiting_count


@pytest.fixture
def queue() -> Queue:
    """A Gatehouse queue on an in-memory Redis, holding three jobs."""
    queue = Queue(DEFAULT_QUEUE, connection=fakeredis.FakeRedis(), serializer=SERIALIZER)
    for index in range(3):
        queue.enqueue("accounts.persistence.persist_user", {"subject": f"user-{index}"})
    return queue


def test_an_empty_queue_has_nothing_waiting() -> None:
    assert waiting_count(Queue(DEFAULT_QUEUE, connection=fakeredis.FakeRedis(), serializer=SERIALIZER)) == 0


def test_jobs_on_the_queue_are_waiting(queue: Queue) -> None:
    assert waiting_count(queue) == 3


def test_a_job_taken_by_a_worker_but_not_started_is_still_waiting(queue: Queue) -> None:
    """RQ's first step of a dequeue (and a batch's): the job moves to the intermediate queue."""
    queue.connection.lmove(queue.key, queue.intermediate_queue_key)
    assert queue.count == 2
    assert waiting_count(queue) == 3


def test_a_started_job_is_no_longer_waiting(queue: Queue) -> None:
    """Marking a job started takes it out of the intermediate queue."""
    job_id = queue.connection.lmove(queue.key, queue.intermediate_queue_key)
    queue.connection.lrem(queue.intermediate_queue_key, 1, job_id)
    assert waiting_count(queue) == 2
