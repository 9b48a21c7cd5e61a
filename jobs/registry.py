"""The job functions an app runs, by name: the only ones a queued job or an outbox row may name.

RQ imports and calls whatever function a job names, so anyone able to write to the queue's
Redis could otherwise run any function of any installed module. Each flow declares its jobs
as `JobSpec`s beside their bodies; the factory hands them to `init_jobs`, so this machinery
knows no flow.

A job's name is its function's dotted path, which RQ and the outbox store with every job. A
job body that moves keeps its old paths as `former_names`: a job queued, scheduled, failed or
kept in the outbox under one of them still runs the function it meant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

_EXTENSION = "gatehouse.jobs"

JobFunction = Callable[..., Any]


@dataclass(frozen=True)
class JobSpec:
    """One job function, and how the worker may run it."""

    function: JobFunction
    # Runs the single arguments of many ready jobs of this function in one go (jobs/batch.py).
    batch: Callable[[Sequence[Any]], None] | None = None
    # Dotted paths this function was queued under before it moved.
    former_names: tuple[str, ...] = ()
    # The worker observes each batched run's enqueue-to-persisted time (gatehouse_enqueue_to_persisted_seconds);
    # a job run alone observes its own.
    measured: bool = False

    @property
    def name(self) -> str:
        """The dotted path RQ stores for a job of this function."""
        return f"{self.function.__module__}.{self.function.__qualname__}"


@dataclass(frozen=True)
class PeriodicTask:
    """Work a worker runs at its first maintenance run, then every `every_seconds` (never in a request)."""

    name: str
    run: Callable[[], object]
    every_seconds: float


class JobRegistry:
    """An app's job functions by every name they were ever queued under, and the worker's periodic tasks."""

    def __init__(self, specs: Iterable[JobSpec], periodic: Iterable[PeriodicTask] = ()):
        self.specs = tuple(specs)
        self.periodic = tuple(periodic)
        self._by_name: dict[str, JobSpec] = {}
        for spec in self.specs:
            for name in (spec.name, *spec.former_names):
                if name in self._by_name:
                    raise ValueError(f"two job functions are named {name!r}")
                self._by_name[name] = spec

    def spec(self, name: str | None) -> JobSpec | None:
        """The job a stored name means (a current or former name), or None."""
        return self._by_name.get(name or "")

    def function(self, name: str | None) -> JobFunction:
        """The function a stored name means; ValueError for anything but the app's job functions."""
        spec = self.spec(name)
        if spec is None:
            raise ValueError(f"{name!r} is not a Gatehouse job function; refusing to run it")
        return spec.function

    def batchable(self, name: str | None) -> bool:
        """True for a job whose function can run in a batch."""
        spec = self.spec(name)
        return spec is not None and spec.batch is not None


def init_jobs(app: Flask, specs: Iterable[JobSpec], periodic: Iterable[PeriodicTask] = ()) -> JobRegistry:
    """Give the app its job functions and periodic tasks."""
    registry = JobRegistry(specs, periodic)
    app.extensions[_EXTENSION] = registry
    return registry


def job_registry(app: Flask | None = None) -> JobRegistry:
    """The job functions of the given (or current) app."""
    registry: JobRegistry = (app or current_app).extensions[_EXTENSION]
    return registry
