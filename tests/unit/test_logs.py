"""logs.py: the request id (taken only if safe, returned, carried into jobs) and JSON log lines."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from accounts.persistence import persist_user
from jobs.queues import REQUEST_ID_META, SERIALIZER, GatehouseJob, job_queue
from logs import EscapingFilter, JsonFormatter, RequestIdFilter, escape_control, request_id_context, safe_request_id
from tests.unit.conftest import AppFactory
from tests.unit.helpers import job_record, sign_in
from tests.unit.mock_provider import MockProvider


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the JSON handler writes to stderr, parsed line by line; the handler is removed afterwards."""
    root = logging.getLogger()
    level = root.level
    yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    for handler in list(root.handlers):
        if getattr(handler, "_gatehouse_json", False):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("value", ["abc", "A.b_c-1", "0" * 64, "f3c1e8b2-8d6e-4c38-9f1b-0c1d2e3f4a5b"])
def test_a_short_plain_request_id_is_taken(value: str) -> None:
    assert safe_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 65,
        "abc\n",
        "abc\nINFO forged line",
        "a\rb",
        "a b",
        "évènement",
        "ａｂｃ",
        "a\x00b",
        "a/b",
        'a"b',
        "a%0a",
    ],
)
def test_anything_else_is_refused(value: str) -> None:
    assert safe_request_id(value) is None


@pytest.mark.parametrize("value", [None, 42, b"abc", ["abc"]])
def test_a_request_id_must_be_text(value: object) -> None:
    assert safe_request_id(value) is None


def test_a_json_line_is_one_line_whatever_the_message() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("jobs.users", logging.ERROR, __file__, 1, "two\nlines %s", ("é",), sys.exc_info())
    with request_id_context("rid-1"):
        RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "two\nlines é"
    assert (parsed["level"], parsed["logger"], parsed["request_id"]) == ("ERROR", "jobs.users", "rid-1")
    assert "ValueError: bad\nthing" in parsed["exception"]
    assert parsed["time"].endswith("+00:00")


def test_gunicorn_s_access_line_carries_the_answered_request_id() -> None:
    atoms = {"{x-request-id}o": "rid-2", "r": "GET / HTTP/1.1"}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", (atoms,), None)
    assert json.loads(JsonFormatter().format(record))["request_id"] == "rid-2"
    atoms["{x-request-id}o"] = "forged\nid"
    assert json.loads(JsonFormatter().format(record))["request_id"] is None


def test_a_caller_s_safe_request_id_is_returned(app: Flask) -> None:
    answer = app.test_client().get("/healthz", headers={"X-Request-ID": "from-the-proxy.1"})
    assert answer.headers["X-Request-ID"] == "from-the-proxy.1"


# (A newline cannot reach a header value: the HTTP layer refuses it; safe_request_id refuses it too, above.)
@pytest.mark.parametrize("sent", ["x" * 65, "évènement", "a b", "abc\tINFO forged", None])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_random_one(app: Flask, sent: str | None) -> None:
    client = app.test_client()
    headers = {"X-Request-ID": sent} if sent is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert first != sent
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second, "each request gets its own"


def test_an_error_page_carries_the_request_id_too(app: Flask) -> None:
    answer = app.test_client().get("/no-such-page", headers={"X-Request-ID": "rid-404"})
    assert answer.status_code == 404
    assert answer.headers["X-Request-ID"] == "rid-404"


def test_the_sign_in_s_job_carries_the_request_id(app: Flask, provider: MockProvider) -> None:
    client = app.test_client()
    landed = sign_in(client, provider, "alice", worker=False)
    with app.app_context():
        jobs = job_queue().get_jobs()
    assert {job.func_name for job in jobs} == {"accounts.persistence.persist_user", "audit.jobs.store_audit_event"}
    [job] = [job for job in jobs if job.func_name == "accounts.persistence.persist_user"]
    assert job.meta[REQUEST_ID_META] == landed.headers["X-Request-ID"]
    assert len(job.args) == 1 and not job.kwargs, "the id is job meta, never an argument of the job function"


def test_the_worker_s_lines_for_a_job_carry_its_request_id(
    make_app: AppFactory, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    app = make_app(LOG_FORMAT="json")
    with app.app_context():
        job = job_queue().enqueue(persist_user, job_record(), meta={REQUEST_ID_META: "rid-job"})
        job.perform()
    lines = json_lines()
    [finished] = [line for line in lines if line["message"].startswith("persist_user finished")]
    assert finished["request_id"] == "rid-job"
    assert finished["logger"] == "jobs.queues"
    assert "alice" not in json.dumps(lines), "no personal data in the worker's lines"


def test_a_job_with_a_forged_request_id_logs_none(make_app: AppFactory, json_lines: Callable[[], Any]) -> None:
    app = make_app(LOG_FORMAT="json")
    with app.app_context():
        queue = job_queue()
        job = GatehouseJob.create(
            persist_user, args=(job_record(),), connection=queue.connection, serializer=SERIALIZER
        )
        job.meta[REQUEST_ID_META] = 'forged\n{"level": "CRITICAL"}'
        job.perform()
    [finished] = [line for line in json_lines() if line["message"].startswith("persist_user finished")]
    assert finished["request_id"] is None


def test_a_job_refuses_an_unknown_function_whatever_its_meta(app: Flask) -> None:
    with app.app_context():
        job = GatehouseJob.create("os.system", args=("true",), connection=job_queue().connection)
        job.meta[REQUEST_ID_META] = "rid-x"
        with pytest.raises(ValueError, match="not a Gatehouse job function"):
            job.perform()


def test_json_mode_logs_every_app_line_once_as_json(
    make_app: AppFactory, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    app = make_app(LOG_FORMAT="json")
    with app.test_request_context(headers={"X-Request-ID": "rid-app"}):
        app.preprocess_request()
        app.logger.warning("something to see")
        logging.getLogger("oidc.provider").info("and from a module logger")
    lines = json_lines()
    assert [line["message"] for line in lines] == ["something to see", "and from a module logger"]
    assert {line["request_id"] for line in lines} == {"rid-app"}


def test_two_apps_in_one_process_do_not_double_the_lines(
    make_app: AppFactory, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    make_app(LOG_FORMAT="json")
    make_app(LOG_FORMAT="json")
    logging.getLogger("jobs.users").warning("once")
    assert [line["message"] for line in json_lines()] == ["once"]


def test_log_format_is_validated(make_app: AppFactory) -> None:
    from config import ConfigError

    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of text, json"):
        make_app(LOG_FORMAT="xml")


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("plain text, é and 日本", "plain text, é and 日本"),
        ("line\r\nforged", "line\\r\\nforged"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("abc\u202edef", "abc\\u202edef"),
        ("nul\x00", "nul\\x00"),
    ],
)
def test_control_and_invisible_characters_are_written_escaped(text: str, written: str) -> None:
    assert escape_control(text) == written


def test_a_text_log_line_with_a_line_break_in_its_values_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(EscapingFilter())
    logger = logging.getLogger("tests.escaping")
    logger.addHandler(handler)
    try:
        logger.warning("refused %s", "/x\r\nFORGED 10.0.0.1 POST /account/delete")
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == "refused /x\\r\\nFORGED 10.0.0.1 POST /account/delete\n"
