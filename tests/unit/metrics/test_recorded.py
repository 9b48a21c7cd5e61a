"""What the app records, through its real flows: token refreshes by result, API sign-outs, failed calls.
Recording never breaks the request; a missing metrics directory is a settings problem."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

import metrics
from config import ConfigError, load_settings
from tests.support.metrics_text import value
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, rewrite_session, session_id, sign_in, stored_session
from tests.unit.metrics.test_metrics import REQUIRED
from tests.unit.mock_provider import MockProvider

API = "https://api.example.test/"


def scraped(app: Flask, name: str, **labels: str) -> float:
    """One sample of a scrape (0 when absent)."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    return value(response.get_data(as_text=True), name, **labels) or 0.0


def expire_access_token(app: Flask, redis: RecordingRedis, client: FlaskClient) -> None:
    """Make the browser's stored access token expired."""
    sid = session_id(app, client)
    before = stored_session(app, redis, sid)
    rewrite_session(app, redis, sid, tokens={**before["tokens"], "expires_at": time.time() - 5})


@pytest.mark.parametrize(
    ("fault", "result"),
    [(None, "success"), ("refresh_error", "refused"), ("token_endpoint_down", "unreachable")],
)
def test_token_refreshes_are_counted_by_result(
    app: Flask,
    signed_in: FlaskClient,
    provider: MockProvider,
    fake_redis: RecordingRedis,
    fault: str | None,
    result: str,
) -> None:
    if fault == "refresh_error":
        provider.refresh_error = "invalid_grant"
    elif fault == "token_endpoint_down":
        provider.token_endpoint_down = True
    before = {kind: scraped(app, "gatehouse_token_refreshes_total", result=kind) for kind in metrics.REFRESH_RESULTS}
    expire_access_token(app, fake_redis, signed_in)
    signed_in.get("/dashboard")
    after = {kind: scraped(app, "gatehouse_token_refreshes_total", result=kind) for kind in metrics.REFRESH_RESULTS}
    assert {kind: after[kind] - before[kind] for kind in after} == {
        kind: 1.0 if kind == result else 0.0 for kind in after
    }


def test_a_refused_refresh_that_signs_out_is_counted_as_an_api_sign_out(
    app: Flask, signed_in: FlaskClient, provider: MockProvider, fake_redis: RecordingRedis
) -> None:
    provider.refresh_error = "invalid_grant"
    before = scraped(app, "gatehouse_api_sign_outs_total", reason="refresh_failed")
    expire_access_token(app, fake_redis, signed_in)
    assert signed_in.get("/dashboard").location == "/login?reason=expired"
    assert scraped(app, "gatehouse_api_sign_outs_total", reason="refresh_failed") == before + 1


def test_a_401_after_a_refresh_is_counted_as_the_api_refusing(
    make_app: AppFactory, provider: MockProvider, mocked_http: responses.RequestsMock
) -> None:
    app = make_app(API_BASE_URL=API)
    client = app.test_client()
    assert sign_in(client, provider).status_code == 302
    mocked_http.add(responses.GET, API, status=401)
    before = scraped(app, "gatehouse_api_sign_outs_total", reason="api_refused")
    failed_before = scraped(app, "gatehouse_outbound_request_duration_seconds_count", target="api", outcome="answered")
    assert client.get("/dashboard").location == "/login?reason=expired"
    assert scraped(app, "gatehouse_api_sign_outs_total", reason="api_refused") == before + 1
    # Both calls were answered (401 is an answer), and both were timed.
    answered = scraped(app, "gatehouse_outbound_request_duration_seconds_count", target="api", outcome="answered")
    assert answered == failed_before + 2


def test_an_api_call_that_gets_no_answer_is_timed_as_failed(
    make_app: AppFactory, provider: MockProvider, mocked_http: responses.RequestsMock
) -> None:
    app = make_app(API_BASE_URL=API)
    client = app.test_client()
    assert sign_in(client, provider).status_code == 302
    mocked_http.add(responses.GET, API, body=requests.ConnectionError("refused"))
    before = scraped(app, "gatehouse_outbound_request_duration_seconds_count", target="api", outcome="failed")
    assert client.get("/dashboard").status_code == 502
    assert scraped(app, "gatehouse_outbound_request_duration_seconds_count", target="api", outcome="failed") == (
        before + 1
    )


def test_a_failing_metric_never_breaks_the_request(
    client: FlaskClient, provider: MockProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**labels: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.SIGN_INS, "labels", broken)
    monkeypatch.setattr(metrics.OUTBOUND_SECONDS, "labels", broken)
    assert sign_in(client, provider, "alice").status_code == 302
    assert client.get("/").status_code == 200
    assert "metric not recorded (sign_in): OSError" in caplog.text


def test_a_missing_metrics_directory_is_a_settings_problem(tmp_path: Path) -> None:
    missing = tmp_path / "not-made"
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={**REQUIRED, "PROMETHEUS_MULTIPROC_DIR": str(missing)})
    assert any(
        problem.startswith("PROMETHEUS_MULTIPROC_DIR must be an existing directory")
        for problem in refused.value.problems
    )
    missing.mkdir()
    assert load_settings(environ={**REQUIRED, "PROMETHEUS_MULTIPROC_DIR": str(missing)})
