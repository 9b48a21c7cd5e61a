"""The audit trail's jobs: storing events (one or a batch), and pruning the old ones (AUDIT_RETENTION_DAYS)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from audit.store import prune_events, store_events
from extensions import db
from jobs.failures import PERMANENT_FAILURES, give_up
from jobs.registry import JobSpec, PeriodicTask

log = logging.getLogger(__name__)

# Seconds between two prunings of old audit events by one worker.
PRUNE_INTERVAL = 3600


def store_audit_event(event: dict[str, Any]) -> None:
    """Store one audit event; a retried or repeated job stores it once."""
    try:
        store_audit_events([event])
    except PERMANENT_FAILURES as error:
        give_up("store_audit_event failed", error)


def store_audit_events(events: Sequence[Mapping[str, Any]]) -> None:
    """Store many audit events in one transaction (the batching worker's call); any error is raised as it is."""
    try:
        store_events(events)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def prune_audit_events(now: datetime | None = None) -> int:
    """Delete events older than AUDIT_RETENTION_DAYS (0 keeps them for ever); returns how many."""
    days = current_app.config["AUDIT_RETENTION_DAYS"]
    if not days:
        return 0
    try:
        pruned = prune_events((now or datetime.now(UTC)) - timedelta(days=days))
    finally:
        db.session.remove()
    if pruned:
        log.info("pruned %d audit events older than %d days", pruned, days)
    return pruned


# The audit trail's jobs (jobs/registry.py). Storing events was `jobs.audit.store_audit_event` until 2026-12.
AUDIT_JOBS = (JobSpec(store_audit_event, batch=store_audit_events, former_names=("jobs.audit.store_audit_event",)),)
AUDIT_PERIODIC_TASKS = (PeriodicTask("pruning old audit events", prune_audit_events, PRUNE_INTERVAL),)
