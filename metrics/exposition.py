"""What a scrape of `/metrics` answers: every process's samples, plus the job counts read now.

The registry is built per scrape. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set
before the process started) it adds up the files of every gunicorn worker, RQ worker and
work horse sharing the directory; otherwise it holds this process's own metrics.

Queue depth, outbox size and failed jobs are read from Redis and SQL during the scrape,
with the app's short Redis timeouts. A source that does not answer is reported by
`gatehouse_metrics_source_error{source=...} 1`, and its counts are left out rather than
guessed; the scrape itself still succeeds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_STATES = ("queued", "started", "scheduled", "failed")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

JobCounts = Callable[[], Mapping[str, int | None]]


def multiprocess_mode() -> bool:
    """True when prometheus_client keeps samples in PROMETHEUS_MULTIPROC_DIR (chosen at its import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def address_allowed(address: str | None, networks: Sequence[IpNetwork]) -> bool:
    """True when the client address lies in one of `networks` (an IPv4-mapped IPv6 address counts as IPv4)."""
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed.version == network.version and parsed in network for network in networks)


class JobCountsCollector:
    """Queue depth, failed jobs and the outbox size, asked of Redis and SQL at scrape time."""

    def __init__(self, counts: JobCounts):
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        """One gauge per job state and one for the outbox, plus which source did not answer."""
        counts = self.counts()
        jobs = GaugeMetricFamily(
            "gatehouse_jobs", "Jobs in each state of the queue, read at scrape time.", labels=["state"]
        )
        for state in JOB_STATES:
            if counts.get(state) is not None:
                jobs.add_metric([state], float(counts[state] or 0))
        yield jobs
        outbox = counts.get("outbox")
        if outbox is not None:
            yield GaugeMetricFamily(
                "gatehouse_outbox_jobs", "Jobs waiting in the SQL outbox for the queue.", value=outbox
            )
        errors = GaugeMetricFamily(
            "gatehouse_metrics_source_error",
            "1 when a source of the scrape-time counts did not answer this scrape (queue Redis, database).",
            labels=["source"],
        )
        errors.add_metric(["queue"], float(any(counts.get(state) is None for state in JOB_STATES)))
        errors.add_metric(["database"], float(outbox is None))
        yield errors


class _Combined:
    """Several collectors read as one (prometheus_client's registries collect in order)."""

    def __init__(self, *collectors: Collector):
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def render(counts: JobCounts) -> bytes:
    """The exposition text of one scrape."""
    scrape = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        samples: Collector = scrape
    else:
        # One process (the development server, tests): its own metrics, with the process collector's.
        samples = REGISTRY
    return generate_latest(_Combined(samples, JobCountsCollector(counts)))
