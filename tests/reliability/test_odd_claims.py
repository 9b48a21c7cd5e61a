"""A provider's odd claims, and jobs that can never succeed, block no user's persistence (on PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.provider import set_user_claims
from tests.reliability.helpers import (
    edit_profile,
    enqueue_records,
    record,
    registry_counts,
    rows_by_subject,
    start_reliability_stack,
)
from tests.support.browserless import sign_in
from tests.support.polling import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, postgres_cluster: PostgresCluster) -> Iterator[Stack]:
    """PostgreSQL, Redis, the development provider, one worker and one web process."""
    running = start_reliability_stack(tmp_path, database_url=postgres_url, provider=True, web=1)
    try:
        yield running
    finally:
        running.stop()


def test_a_long_name_with_a_nul_is_stored_and_later_edits_persist(stack: Stack) -> None:
    """A 300-character `name` holding NUL and other control characters is cleaned at sign-in; edits keep flowing."""
    provider, web = stack.provider_url, stack.web_url
    odd_name = "Ada\x00 " + "L" * 300 + "\x07"
    set_user_claims(provider, "odd-claims", {"name": odd_name, "email": "ada\x00@example.test"})
    http = requests.Session()
    page = sign_in(http, web, "odd-claims", next_path="/profile")
    assert page.status_code == 200
    row = wait_until(lambda: rows_by_subject(stack).get("odd-claims"), timeout=30, what="the sign-in to persist")[0]
    assert row["name"].startswith("Ada L") and len(row["name"]) == 255 and "\x00" not in row["name"]
    assert row["email"] == "ada@example.test"
    assert len(row["display_name"]) <= 80

    for attempt in ("First edit", "Second edit"):
        saved = edit_profile(http, web, display_name=attempt)
        assert saved.status_code == 302, saved.text[:300]
        wait_until(
            lambda attempt=attempt: rows_by_subject(stack)["odd-claims"][0]["display_name"] == attempt,
            timeout=30,
            what=f"{attempt!r} to persist",
        )
    assert registry_counts(stack)["failed"] == 0


def test_a_job_that_can_never_succeed_fails_at_once_visibly_and_blocks_nothing(stack: Stack) -> None:
    """A malformed record fails without retries, shows in `jobs status`, and the user's next job persists."""
    started = time.monotonic()
    broken = record("never-blocked", profile_version=5)
    broken["identity_version"] = "not a number"
    enqueue_records(stack, [broken])
    wait_until(lambda: registry_counts(stack)["failed"] == 1, timeout=30, what="the broken job to fail")
    # Failed for good at once, not after the retry schedule (JOB_RETRY_INTERVALS totals 8 s here).
    assert registry_counts(stack)["scheduled"] == 0
    assert time.monotonic() - started < 8
    status = json.loads(stack.flask("jobs", "status", "--json").stdout)
    assert status["counts"]["failed"] == 1
    assert "PermanentJobFailure" in status["failures"][0]["error"]

    enqueue_records(stack, [record("never-blocked", profile_version=6, display_name="Still Persisted")])
    row = wait_until(lambda: rows_by_subject(stack).get("never-blocked"), timeout=30, what="the next job")[0]
    assert row["display_name"] == "Still Persisted"
