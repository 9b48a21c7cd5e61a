"""With PUBLIC_URL (Host checked), Prometheus still reaches /metrics by address, and only /metrics."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from metrics.hosts import is_address_host
from tests.unit.conftest import AppFactory

PUBLIC = "https://gatehouse.example.test"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("10.0.0.11", True),
        ("10.0.0.11:8000", True),
        ("[::1]:8000", True),
        ("[fd00::5]", True),
        ("localhost:8000", True),
        ("LOCALHOST", True),
        ("gatehouse.example.test", False),
        ("evil.example:8000", False),
        ("10.0.0.11.evil.example", False),
        ("10.0.0.11:80x", False),
        ("[::1]x", False),
        ("::1", True),
        ("", False),
    ],
)
def test_which_hosts_are_addresses(host: str, address: bool) -> None:
    assert is_address_host(host) is address


@pytest.fixture
def production(make_app: AppFactory) -> FlaskClient:
    """A production app: every Host but PUBLIC_URL's is refused."""
    return make_app(GATEHOUSE_ENV="production", PUBLIC_URL=PUBLIC, DATABASE_URL="sqlite://").test_client()


def test_a_scrape_by_address_is_answered(production: FlaskClient) -> None:
    for host in ("10.0.0.11:8000", "127.0.0.1:8000", "[::1]:8000"):
        response = production.get("/metrics", headers={"Host": host}, base_url="http://127.0.0.1")
        assert response.status_code == 200, host
        assert b"gatehouse_sign_ins_total" in response.get_data()


def test_a_foreign_name_is_still_refused_even_for_metrics(production: FlaskClient) -> None:
    # A page on another site pointing its name at this server (DNS rebinding) sends its own name.
    response = production.get("/metrics", headers={"Host": "evil.example:8000"})
    assert response.status_code == 400


def test_other_pages_by_address_are_still_refused(production: FlaskClient) -> None:
    assert production.get("/healthz", headers={"Host": "10.0.0.11:8000"}).status_code == 400
    assert production.get("/metrics/", headers={"Host": "10.0.0.11:8000"}).status_code == 400


def test_the_address_allow_list_still_applies(production: FlaskClient) -> None:
    response = production.get(
        "/metrics", headers={"Host": "10.0.0.11:8000"}, environ_base={"REMOTE_ADDR": "198.51.100.9"}
    )
    assert response.status_code == 404
