"""Gatehouse's Prometheus metrics: the metric objects, and the one-line calls the app makes.

The objects live at module level, as prometheus_client expects; every one has labels, so
none writes anything until the app records a sample (in multiprocess mode an unlabelled
metric would open its file in PROMETHEUS_MULTIPROC_DIR at import). The registry that
`/metrics` reads is built per scrape (metrics/exposition.py), never here.

Labels take values from small fixed sets only, never a user identifier: a value outside
its set is recorded as the set's catch-all.

Metrics read at scrape time (queue depth, outbox size, failed jobs) are in exposition.py.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import ParamSpec

from prometheus_client import Counter, Histogram
from rq.job import Job

from metrics.process import use_process_identity

# Before any value exists: work horses share one set of files per worker (metrics/process.py).
use_process_identity()

log = logging.getLogger(__name__)
P = ParamSpec("P")

# What one call to the provider's token endpoint with a refresh token came to.
REFRESH_RESULTS = ("success", "refused", "race_lost", "unreachable", "rejected")
# Why the API's refusal ended a session (clients.downstream.AuthenticationLost.reason).
API_SIGN_OUT_REASONS = ("api_refused", "refresh_failed", "no_token")
OUTBOUND_TARGETS = ("provider", "api")
SESSION_STORE_OPERATIONS = ("read", "write")
PERSIST_JOBS = ("persist_user",)

SIGN_INS = Counter("gatehouse_sign_ins", "Completed sign-ins, by result: success or the kind of failure.", ["result"])
TOKEN_REFRESHES = Counter(
    "gatehouse_token_refreshes", "Refresh-token redemptions at the provider, by result.", ["result"]
)
API_SIGN_OUTS = Counter(
    "gatehouse_api_sign_outs",
    "Sessions ended because the downstream API refused the user's token and a refresh could not cure it.",
    ["reason"],
)
OUTBOUND_SECONDS = Histogram(
    "gatehouse_outbound_request_duration_seconds",
    "Time of each outbound HTTP call (provider or downstream API), whole answer read.",
    ["target", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PERSISTED_SECONDS = Histogram(
    "gatehouse_enqueue_to_persisted_seconds",
    "From a persistence job's first enqueue to its row committed (retries included), observed by the job.",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
SESSION_STORE_ERRORS = Counter(
    "gatehouse_session_store_errors", "Session store (Redis) failures, by operation.", ["operation"]
)


def never_fails(record: Callable[P, None]) -> Callable[P, None]:
    """Recording a sample must never break the request or job it describes (say, a full metrics directory)."""

    @functools.wraps(record)
    def safely(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as error:
            log.warning("metric not recorded (%s): %s: %s", record.__name__, type(error).__name__, error)

    return safely


def one_of(value: str, allowed: tuple[str, ...], other: str) -> str:
    """`value` if it is in the fixed set, else `other` (a label never takes a value from outside its set)."""
    return value if value in allowed else other


# The values of a sign-in's `result`: "success" and the kinds of failure, which the sign-in flow
# registers at app start (signin/setup.py): metrics, the lowest layer, knows none of them itself.
_sign_in_results: tuple[str, ...] = ("success", "failed")


def register_sign_in_results(kinds: Iterable[str]) -> None:
    """Add the kinds of sign-in failure `result` may take (each app registers the same fixed set)."""
    global _sign_in_results
    _sign_in_results = tuple(dict.fromkeys((*_sign_in_results, *kinds)))


def sign_in_results() -> tuple[str, ...]:
    """The values of a sign-in's `result`: "success", or a registered kind of failure."""
    return _sign_in_results


@never_fails
def sign_in(result: str) -> None:
    """Count one sign-in: "success" or the failure's kind."""
    SIGN_INS.labels(result=one_of(result, sign_in_results(), "failed")).inc()


@never_fails
def token_refresh(result: str) -> None:
    """Count one refresh-token redemption by its result."""
    TOKEN_REFRESHES.labels(result=one_of(result, REFRESH_RESULTS, "rejected")).inc()


@never_fails
def api_sign_out(reason: str) -> None:
    """Count one session ended because the API refused the user."""
    API_SIGN_OUTS.labels(reason=one_of(reason, API_SIGN_OUT_REASONS, "api_refused")).inc()


@never_fails
def outbound_call(target: str, seconds: float, *, answered: bool) -> None:
    """Observe one outbound call's duration."""
    outcome = "answered" if answered else "failed"
    OUTBOUND_SECONDS.labels(target=one_of(target, OUTBOUND_TARGETS, "api"), outcome=outcome).observe(seconds)


@never_fails
def persisted(job: Job | None, name: str = "persist_user") -> None:
    """Observe how long ago `job` (the running job) was first enqueued; nothing outside a job."""
    if job is None or job.created_at is None:
        return
    PERSISTED_SECONDS.labels(job=one_of(name, PERSIST_JOBS, PERSIST_JOBS[0])).observe(
        max(0.0, time.time() - job.created_at.timestamp())
    )


def persisted_jobs(jobs: Iterable[Job]) -> None:
    """Observe `persisted` for each job of a batch whose rows were just committed."""
    for job in jobs:
        persisted(job)


@never_fails
def session_store_error(operation: str) -> None:
    """Count one failed read or write of the session store."""
    SESSION_STORE_ERRORS.labels(operation=one_of(operation, SESSION_STORE_OPERATIONS, "read")).inc()


def initialise_series() -> None:
    """Create every labelled series at zero, so rates and absent-series alerts work from the first scrape."""
    fixed: Iterable[tuple[Counter, str, tuple[str, ...]]] = (
        (SIGN_INS, "result", sign_in_results()),
        (TOKEN_REFRESHES, "result", REFRESH_RESULTS),
        (API_SIGN_OUTS, "reason", API_SIGN_OUT_REASONS),
        (SESSION_STORE_ERRORS, "operation", SESSION_STORE_OPERATIONS),
    )
    for counter, label, values in fixed:
        for value in values:
            counter.labels(**{label: value})
