"""The standing work horse (jobs/horse.py): one fork for many batches, and a death its worker sees at once.

Real fork()s, no Redis server (fakeredis where a worker is built): the horse's side runs plain
functions here; the worker's use of it is in tests/reliability/test_batches.py and
test_worker_killed.py.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from extensions import db
from jobs.horse import HorseDied, Outcome, StandingHorse, outcome_of
from jobs.queues import DEFAULT_QUEUE, SERIALIZER
from jobs.worker import AppWorker


def answer_with_pid(message: Any) -> Outcome:
    """In the horse: fail on "boom", otherwise answer with the horse's pid."""
    if message == "boom":
        return outcome_of(lambda: (_ for _ in ()).throw(ValueError("bad record")), (ConnectionError,))
    if message == "sleep":
        time.sleep(30)
    return "ok", str(os.getpid()), ""


@pytest.fixture
def horse() -> Any:
    standing = StandingHorse(lambda: None, answer_with_pid)
    yield standing
    standing.kill()


def test_one_horse_runs_batch_after_batch(horse: StandingHorse) -> None:
    answers = []
    for index in range(5):
        horse.send(index)
        answers.append(horse.wait(10))
    pids = {answer[1] for answer in answers if answer is not None}
    assert pids == {str(horse.pid)}  # forked once, not once per batch
    assert horse.pid != os.getpid()
    assert os.getpgid(horse.pid) == horse.pid  # its own process group, as RQ's horse (tests/support/faults.py)


def test_an_error_comes_back_classified_with_its_traceback(horse: StandingHorse) -> None:
    horse.send("boom")
    outcome = horse.wait(10)
    assert outcome is not None
    kind, error, detail = outcome
    assert (kind, error) == ("error", "ValueError")
    assert "bad record" in detail
    horse.send(1)  # the horse is still there for the next batch
    assert horse.wait(10) == ("ok", str(horse.pid), "")


def test_a_horse_killed_mid_batch_is_seen_at_once(horse: StandingHorse) -> None:
    horse.send("sleep")
    pid = horse.pid
    assert horse.wait(0.2) is None  # still at it
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(HorseDied) as died:
        horse.wait(10)
    assert time.monotonic() - started < 2
    assert died.value.status is not None and os.WIFSIGNALED(died.value.status)
    assert not horse.alive


def test_a_horse_killed_between_batches_is_replaced_without_losing_the_next_batch(horse: StandingHorse) -> None:
    horse.send(0)
    horse.wait(10)
    first = horse.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    horse.send(1)
    outcome = horse.wait(10)
    assert outcome is not None and outcome[0] == "ok"
    assert horse.pid != first


def test_a_horse_let_go_exits(horse: StandingHorse) -> None:
    horse.send(0)
    horse.wait(10)
    pid = horse.pid
    status = horse.stop()
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert not horse.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_standing_horse_never_uses_a_database_connection_of_its_worker(app: Flask, fake_redis: Redis) -> None:
    queue = Queue(DEFAULT_QUEUE, connection=fake_redis, serializer=SERIALIZER)
    worker = AppWorker([queue], connection=fake_redis, serializer=SERIALIZER, name="horse-test")
    worker.app = app
    with app.app_context(), db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")  # the worker's pool now holds a connection (outbox drains use it)
    with app.app_context():
        assert db.engine.pool.checkedin() == 1  # type: ignore[attr-defined]

    def pooled_in_horse(message: Any) -> Outcome:
        with app.app_context():
            inherited = db.engine.pool.checkedin()  # type: ignore[attr-defined]
            with db.engine.connect() as connection:  # the horse's own, kept for its next batches
                connection.exec_driver_sql("SELECT 1")
            return "ok", f"{inherited} {db.engine.pool.checkedin()}", ""  # type: ignore[attr-defined]

    horse = StandingHorse(worker.horse_ready, pooled_in_horse)
    try:
        horse.send(0)
        first = horse.wait(10)
        horse.send(1)
        second = horse.wait(10)
    finally:
        horse.stop()
    assert first == ("ok", "0 1", "")  # fork()'s copy of the worker's pool was dropped before the first batch
    assert second == ("ok", "1 1", "")  # and the horse's own connection is reused from batch to batch
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1  # the worker's connection still works
