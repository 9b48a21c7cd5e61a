"""clients/outbound.py: stateless sessions keep no cookies and take no credentials from ~/.netrc."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from clients.outbound import stateless_session

URL = "https://api.example.test/v1/me"


def test_netrc_credentials_never_replace_the_callers_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mocked_http: responses.RequestsMock
) -> None:
    """A ~/.netrc entry for the API host would otherwise put one account's password on every call."""
    (tmp_path / ".netrc").write_text("machine api.example.test login shared password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    mocked_http.add(responses.GET, URL, json={})
    stateless_session().get(URL, headers={"Authorization": "Bearer alices-token"}, timeout=5)
    assert mocked_http.calls[0].request.headers["Authorization"] == "Bearer alices-token"
    mocked_http.add(responses.GET, URL, json={})
    stateless_session().get(URL, timeout=5)
    assert "Authorization" not in mocked_http.calls[1].request.headers


def test_cookies_set_by_one_answer_are_not_kept(mocked_http: responses.RequestsMock) -> None:
    """The next call, whoever makes it, carries no cookie from the last answer."""
    http = stateless_session()
    mocked_http.add(responses.GET, URL, json={}, headers={"Set-Cookie": "api=alice; Path=/"})
    mocked_http.add(responses.GET, URL, json={})
    http.get(URL, timeout=5)
    http.get(URL, timeout=5)
    assert "Cookie" not in mocked_http.calls[1].request.headers
    assert len(http.cookies) == 0
