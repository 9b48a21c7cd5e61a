"""/metrics on the real stack: gunicorn with two workers and an RQ worker sharing PROMETHEUS_MULTIPROC_DIR.

Sign-ins served by either gunicorn worker, and the persistence jobs the RQ worker's work
horses ran, all count in one scrape, whichever worker answers it; the work horses write to
their worker's one set of files, not a new set per job; no label names a user.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict

from tests.support.browserless import TIMEOUT, sign_in
from tests.support.metrics_text import label_values, value
from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

# Enough to be sure both gunicorn workers served some; each new browser is a new connection.
MAX_SIGN_INS = 60
IDENTITY = re.compile(r"_(\d+(?:-horse)?)\.db$")


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every process of the stack keeps its metric samples in."""
    return tmp_path_factory.mktemp("metrics-samples")


@pytest.fixture(scope="module")
def metrics_stack(tmp_path_factory: pytest.TempPathFactory, metrics_dir: Path) -> Iterator[Stack]:
    """One gunicorn (two workers) and one RQ worker, with one shared metrics directory.

    Started only once the worker is up: a test that stops Redis must not catch the worker still starting
    (it connects as it starts, and would exit).
    """
    running = start_stack(
        tmp_path_factory.mktemp("metrics"),
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        wait_for_workers=True,
    )
    try:
        yield running
    finally:
        running.stop()


def scrape(stack: Stack) -> str:
    """One scrape, on a fresh connection (so either gunicorn worker may answer it)."""
    response = requests.get(f"{stack.web_url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.text


def sign_ins_by_process(directory: Path) -> Counter[str]:
    """Successful sign-ins each process recorded, read from its own sample file."""
    counts: Counter[str] = Counter()
    for path in directory.glob("counter_*.db"):
        match = IDENTITY.search(path.name)
        assert match, path.name
        for key, count, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if name == "gatehouse_sign_ins_total" and labels == {"result": "success"}:
                counts[match.group(1)] += int(count)
    return counts


def test_one_scrape_counts_every_process(metrics_stack: Stack, metrics_dir: Path) -> None:
    subjects = []
    # Sign in on new connections until both gunicorn workers have served some (bounded).
    while len(sign_ins_by_process(metrics_dir)) < 2:
        assert len(subjects) < MAX_SIGN_INS, f"one gunicorn worker served all {len(subjects)} sign-ins"
        subject = f"metrics-{uuid.uuid4().hex[:12]}"
        with requests.Session() as browser:
            page = sign_in(browser, metrics_stack.web_url, subject)
        assert page.status_code == 200
        subjects.append(subject)
    signed_in = len(subjects)

    web_processes = set(sign_ins_by_process(metrics_dir))
    assert sum(sign_ins_by_process(metrics_dir).values()) == signed_in
    # Every scrape, whichever worker answers it, adds up both workers' counts.
    for _ in range(6):
        assert value(scrape(metrics_stack), "gatehouse_sign_ins_total", result="success") == signed_in

    # The RQ worker's work horses persisted every sign-in and observed each job's latency.
    def persisted() -> float:
        return value(scrape(metrics_stack), "gatehouse_enqueue_to_persisted_seconds_count", job="persist_user") or 0

    assert wait_until(lambda: persisted() >= signed_in, timeout=60, what="every sign-in persisted")
    assert persisted() == signed_in

    # One set of files per process: the worker's (it observes each batch's jobs once the standing horse
    # answers), and one that every work horse it ever forks shares, never one per horse.
    worker_pid = str(metrics_stack.processes["worker0"].pid)
    identities = {IDENTITY.search(path.name).group(1) for path in metrics_dir.glob("*.db")}  # type: ignore[union-attr]
    assert worker_pid in identities
    assert identities <= web_processes | {worker_pid, f"{worker_pid}-horse"}

    text = scrape(metrics_stack)
    provider_calls = value(
        text, "gatehouse_outbound_request_duration_seconds_count", target="provider", outcome="answered"
    )
    assert provider_calls is not None and provider_calls >= 2 * signed_in  # the token endpoint and UserInfo, each time
    # Every job the sign-ins queued (persistence, and any other) is taken: the queue reads empty.
    wait_until(lambda: value(scrape(metrics_stack), "gatehouse_jobs", state="queued") == 0, what="an empty queue")
    assert value(text, "gatehouse_metrics_source_error", source="queue") == 0
    assert value(text, "gatehouse_metrics_source_error", source="database") == 0
    # No label, and nothing else in the answer, names a user or the issuer.
    for subject in subjects:
        assert subject not in text
    assert metrics_stack.provider_url not in text and "@" not in "".join(label_values(text))


def test_the_scrape_answers_while_redis_is_down(metrics_stack: Stack) -> None:
    metrics_stack.stop_redis()
    try:
        text = scrape(metrics_stack)
        assert value(text, "gatehouse_metrics_source_error", source="queue") == 1
        assert value(text, "gatehouse_jobs", state="queued") is None
        assert value(text, "gatehouse_sign_ins_total", result="success") is not None
    finally:
        metrics_stack.start_redis()
