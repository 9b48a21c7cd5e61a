"""OutageTolerantWorker: where RQ's loop would quit on a lost queue Redis, the worker carries on.

An in-memory Redis whose server is switched off stands in for the outage; the real one, mid-job,
is in tests/reliability/test_queue_outage_mid_job.py. Last, `flask --app app worker` itself, when
RQ's own start or stop bookkeeping fails.
"""

from __future__ import annotations

import logging
import os

import fakeredis
import pytest
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from rq import Queue, Worker
from rq.job import Job

from commands import worker as worker_module
from jobs.outage import OutageTolerantWorker
from jobs.queues import DEFAULT_QUEUE, SERIALIZER


class Outage:
    """The in-memory Redis server, which a test can switch off."""

    def __init__(self) -> None:
        self.server = fakeredis.FakeServer()
        self.connection = fakeredis.FakeRedis(server=self.server)
        self.queue = Queue(DEFAULT_QUEUE, connection=self.connection, serializer=SERIALIZER)

    def begin(self) -> None:
        """Redis goes away: every command raises ConnectionError."""
        self.server.connected = False


@pytest.fixture
def outage() -> Outage:
    return Outage()


@pytest.fixture
def worker(outage: Outage) -> OutageTolerantWorker:
    return OutageTolerantWorker([outage.queue], connection=outage.connection, serializer=SERIALIZER, name="w")


def test_rq_alone_would_raise_here(outage: Outage) -> None:
    """The control: RQ's own worker lets the error out of the calls its loop makes between jobs."""
    plain = Worker([outage.queue], connection=outage.connection, serializer=SERIALIZER, name="plain")
    outage.begin()
    with pytest.raises(RedisConnectionError):
        plain.set_state("idle")


def test_between_jobs_nothing_raises_while_redis_is_away(outage: Outage, worker: OutageTolerantWorker) -> None:
    outage.begin()
    worker.heartbeat()
    worker.set_state("idle")
    worker.check_for_suspension(False)
    worker.run_maintenance_tasks()
    assert worker.get_state() == "idle"  # kept in the process, for RQ's signal handling


def test_calls_queued_on_a_pipeline_leave_the_error_to_its_owner(outage: Outage, worker: OutageTolerantWorker) -> None:
    outage.begin()
    with pytest.raises(RedisConnectionError), outage.connection.pipeline() as pipe:
        worker.heartbeat(10, pipeline=pipe)
        worker.set_state("busy", pipeline=pipe)
        pipe.execute()


@pytest.mark.parametrize(
    "error", [RedisConnectionError("gone"), RedisTimeoutError("slow")], ids=["ConnectionError", "TimeoutError"]
)
def test_a_job_cut_off_by_the_outage_waits_for_its_horse_and_returns(
    outage: Outage, worker: OutageTolerantWorker, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The horse is waited for (never two at once); the job itself is left to RQ's recovery."""
    job = outage.queue.enqueue("accounts.persistence.persist_user", {"subject": "cut-off"})
    horse = os.fork()
    if horse == 0:
        os._exit(0)

    def cut_off(self: Worker, job: Job, queue: Queue) -> None:
        self._horse_pid = horse
        raise error

    monkeypatch.setattr(Worker, "execute_job", cut_off)
    worker.execute_job(job, outage.queue)
    assert worker._horse_pid == 0
    with pytest.raises(ChildProcessError):  # already reaped
        os.waitpid(horse, os.WNOHANG)


def test_other_errors_still_reach_rq(
    outage: Outage, worker: OutageTolerantWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = outage.queue.enqueue("accounts.persistence.persist_user", {"subject": "bug"})

    def broken(self: Worker, job: Job, queue: Queue) -> None:
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr(Worker, "execute_job", broken)
    with pytest.raises(ValueError):
        worker.execute_job(job, outage.queue)


@pytest.mark.parametrize(
    "error", [WatchError("Watched variable changed."), RedisConnectionError("gone")], ids=["watch", "lost"]
)
def test_a_redis_error_at_start_or_stop_is_logged_and_exits_1(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    """RQ registers the worker's birth and death itself; a failure there is one log record, not a raw traceback."""

    class Failing:
        name = "stopping-worker"
        connection = None

        def work(self, **options: object) -> None:
            raise error

    monkeypatch.setattr(worker_module, "build_worker_once_reachable", lambda app, name=None, wait=True: Failing())
    monkeypatch.setattr(worker_module, "check_eviction_policy", lambda connection: None)
    with caplog.at_level(logging.ERROR, logger="commands.worker"):
        result = app.test_cli_runner().invoke(args=["worker"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # the command ended itself, nothing escaped it
    [record] = [record for record in caplog.records if record.name == "commands.worker"]
    assert record.getMessage() == "Worker stopping-worker: stopped on a queue Redis error"
    assert record.exc_info is not None and record.exc_info[1] is error
