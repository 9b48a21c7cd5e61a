"""`gunicorn 'app:create_app()'` serves the app, and its health endpoints say so."""

from __future__ import annotations

import pytest
import requests

from tests.support.browserless import TIMEOUT
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_gunicorn_serves_healthz_and_readyz(stack: Stack) -> None:
    health = requests.get(f"{stack.web_url}/healthz", timeout=TIMEOUT)
    ready = requests.get(f"{stack.web_url}/readyz", timeout=TIMEOUT)

    assert health.headers["Server"] == "gunicorn"
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert {"redis", "queue", "database"} <= body["checks"].keys()
    assert set(body["checks"].values()) == {"ok"}
