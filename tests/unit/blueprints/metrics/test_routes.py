"""/metrics: the text format, fixed labels, the address allow-list (forged, proxied, IPv6), Redis down."""

from __future__ import annotations

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from clients.downstream import AuthenticationLost
from errors import handle_authentication_lost
from tests.support.metrics_text import label_values, samples, value
from tests.unit.conftest import AppFactory
from tests.unit.helpers import RecordingRedis, sign_in
from tests.unit.mock_provider import ISSUER, MockProvider

OUTSIDER = "203.0.113.7"


def scrape(client: FlaskClient, address: str = "127.0.0.1", **headers: str) -> str:
    """GET /metrics from `address`; the answer must be 200 and parse as the text format."""
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    samples(text)  # raises unless it is the exposition format
    return text


def test_answers_the_text_format_uncached_and_without_a_session(
    client: FlaskClient, fake_redis: RecordingRedis
) -> None:
    keys_before = set(fake_redis.keys("*"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert set(fake_redis.keys("*")) == keys_before
    text = response.get_data(as_text=True)
    # Every labelled series exists from the first scrape, at its fixed label values.
    assert value(text, "gatehouse_sign_ins_total", result="disabled") is not None
    assert value(text, "gatehouse_token_refreshes_total", result="unreachable") is not None
    assert value(text, "gatehouse_api_sign_outs_total", reason="api_refused") is not None
    assert value(text, "gatehouse_session_store_errors_total", operation="write") is not None
    assert value(text, "gatehouse_jobs", state="queued") == 0
    assert value(text, "gatehouse_jobs", state="failed") == 0
    assert value(text, "gatehouse_outbox_jobs") == 0
    assert value(text, "gatehouse_metrics_source_error", source="queue") == 0
    assert value(text, "gatehouse_metrics_source_error", source="database") == 0


def test_a_scrape_with_a_session_cookie_neither_stores_nor_sets_one(signed_in: FlaskClient) -> None:
    response = signed_in.get("/metrics")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_sign_ins_and_provider_calls_are_counted_without_user_identifiers(
    client: FlaskClient, provider: MockProvider
) -> None:
    before = scrape(client)
    assert sign_in(client, provider, "alice", email="alice@example.test", name="Alice Liddell").status_code == 302
    fresh = client.application.test_client()
    refused = fresh.get("/auth/callback?state=unknown&code=whatever")
    assert refused.status_code == 303
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew("gatehouse_sign_ins_total", result="success") == 1
    assert grew("gatehouse_sign_ins_total", result="expired") == 1
    # Discovery, token, JWKS and UserInfo calls all went to the provider.
    assert grew("gatehouse_outbound_request_duration_seconds_count", target="provider", outcome="answered") >= 3
    # The worker's job ran here: its enqueue-to-persisted latency was observed.
    assert grew("gatehouse_enqueue_to_persisted_seconds_count", job="persist_user") == 1
    for label in label_values(after):
        assert "alice" not in label.lower() and ISSUER not in label and "@" not in label


def test_a_user_signed_out_by_the_api_is_counted_by_reason(app: Flask) -> None:
    with app.test_request_context("/dashboard"):
        before = value(scrape(app.test_client()), "gatehouse_api_sign_outs_total", reason="refresh_failed") or 0
        handle_authentication_lost(AuthenticationLost("refresh refused", reason="refresh_failed"))
        after = value(scrape(app.test_client()), "gatehouse_api_sign_outs_total", reason="refresh_failed")
    assert after == before + 1


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_addresses_are_answered_by_default(client: FlaskClient, address: str) -> None:
    scrape(client, address)


@pytest.mark.parametrize("address", [OUTSIDER, "10.0.0.5", "2001:db8::1", "::ffff:203.0.113.7", "", "not-an-address"])
def test_other_addresses_get_the_plain_404(client: FlaskClient, address: str) -> None:
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 404
    assert response.get_data() == client.get("/no-such-page").get_data()
    assert b"gatehouse_" not in response.get_data()


def test_a_forged_forwarded_for_is_ignored_without_a_trusted_proxy(client: FlaskClient) -> None:
    forged = client.get(
        "/metrics", environ_base={"REMOTE_ADDR": OUTSIDER}, headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "::1"}
    )
    assert forged.status_code == 404


def test_behind_a_trusted_proxy_the_client_is_the_one_the_proxy_saw(make_app: AppFactory) -> None:
    app = make_app(PROXY_FIX_HOPS=1, METRICS_ALLOWED_NETWORKS="10.20.0.0/16", FORWARDED_ALLOW_IPS="10.99.0.1")
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.99.0.1"}
    # The proxy appends the address it saw; whatever the client wrote before it is not trusted.
    forged = client.get("/metrics", environ_base=proxy, headers={"X-Forwarded-For": "10.20.0.5, 198.51.100.4"})
    assert forged.status_code == 404
    scraper = client.get("/metrics", environ_base=proxy, headers={"X-Forwarded-For": "10.20.0.5"})
    assert scraper.status_code == 200
    # The proxy's own address is not the client's: without a forwarded address it is what counts.
    assert client.get("/metrics", environ_base=proxy).status_code == 404


def test_forwarded_headers_from_a_peer_that_is_not_a_trusted_proxy_are_not_believed(make_app: AppFactory) -> None:
    """Third pass, item 7: with PROXY_FIX_HOPS=1, a client talking to the app directly cannot claim an address."""
    app = make_app(PROXY_FIX_HOPS=1, METRICS_ALLOWED_NETWORKS="10.0.5.0/24", FORWARDED_ALLOW_IPS="10.99.0.1")
    client = app.test_client()
    direct = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=direct, headers={"X-Forwarded-For": "10.0.5.7"}).status_code == 404
    through_the_proxy = {"REMOTE_ADDR": "10.99.0.1"}
    assert (
        client.get("/metrics", environ_base=through_the_proxy, headers={"X-Forwarded-For": "10.0.5.7"}).status_code
        == 200
    )
    # By default only loopback is a trusted proxy; "*" believes every peer (gunicorn's own meaning).
    assert (
        make_app(PROXY_FIX_HOPS=1, METRICS_ALLOWED_NETWORKS="10.0.5.0/24")
        .test_client()
        .get("/metrics", environ_base=direct, headers={"X-Forwarded-For": "10.0.5.7"})
        .status_code
        == 404
    )
    assert (
        make_app(PROXY_FIX_HOPS=1, METRICS_ALLOWED_NETWORKS="10.0.5.0/24", FORWARDED_ALLOW_IPS="*")
        .test_client()
        .get("/metrics", environ_base=direct, headers={"X-Forwarded-For": "10.0.5.7"})
        .status_code
        == 200
    )


def test_the_allowed_networks_come_from_the_setting(make_app: AppFactory) -> None:
    client = make_app(METRICS_ALLOWED_NETWORKS="192.0.2.0/24, 2001:db8::/32").test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.44"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "2001:db8::9"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_with_redis_down_the_scrape_still_answers_and_says_so(
    client: FlaskClient, redis_server: fakeredis.FakeServer
) -> None:
    redis_server.connected = False
    # A stale cookie makes the session store try Redis first.
    client.set_cookie("gatehouse_session", "x" * 43)
    text = scrape(client)
    assert value(text, "gatehouse_metrics_source_error", source="queue") == 1
    assert value(text, "gatehouse_metrics_source_error", source="database") == 0
    assert value(text, "gatehouse_jobs", state="queued") is None  # left out, not guessed
    assert value(text, "gatehouse_outbox_jobs") == 0


def test_session_store_failures_are_counted(signed_in: FlaskClient, redis_server: fakeredis.FakeServer) -> None:
    scraper = signed_in.application.test_client()  # no cookie: its scrapes never read the session store
    before = value(scrape(scraper), "gatehouse_session_store_errors_total", operation="read") or 0
    redis_server.connected = False
    assert signed_in.get("/").status_code == 503
    assert value(scrape(scraper), "gatehouse_session_store_errors_total", operation="read") == before + 1


def test_the_database_down_is_reported_too(make_app: AppFactory, tmp_path: pytest.TempPathFactory) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing/gone.db", create_tables=False)
    text = scrape(app.test_client())
    assert value(text, "gatehouse_metrics_source_error", source="database") == 1
    assert value(text, "gatehouse_outbox_jobs") is None


def test_only_get_is_served(client: FlaskClient) -> None:
    assert client.post("/metrics").status_code in (403, 405)
