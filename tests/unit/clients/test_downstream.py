"""clients/downstream.DownstreamClient: bearer token, refresh and one retry on 401, never a sign-out for outages."""

from __future__ import annotations

import pytest
import requests
import responses

from clients.downstream import IDEMPOTENT_METHODS, ApiResult, AuthenticationLost, DownstreamClient, TokenUnavailable

API = "https://api.example.test/"
ME = f"{API}v1/me"


class FakeTokens:
    """A token source: hands out `token`, refreshes to `fresh_tokens` in turn, or fails as told."""

    def __init__(
        self,
        token: str = "token-1",  # noqa: S107 (a fake)
        *,
        fresh_tokens: tuple[str, ...] = ("token-2", "token-3"),
        expired: bool = False,
        refresh_error: TokenUnavailable | None = None,
    ):
        self.token = token
        self.fresh_tokens = list(fresh_tokens)
        self.expired = expired
        self.refresh_error = refresh_error
        self.refreshes = 0

    def current(self) -> str | None:
        """The token, refreshed first when it has expired (as SessionTokens does)."""
        return self.refresh() if self.expired else self.token

    def refresh(self, rejected: str | None = None) -> str:
        """A new token, or the configured failure."""
        self.refreshes += 1
        if self.refresh_error is not None:
            raise self.refresh_error
        self.token, self.expired = self.fresh_tokens.pop(0), False
        return self.token


@pytest.fixture
def api() -> DownstreamClient:
    """A client for the fake API with a short timeout."""
    return DownstreamClient(API, timeout=2.5)


def bearer_tokens(mock: responses.RequestsMock) -> list[str]:
    """The bearer token of each request the API received, in order."""
    return [call.request.headers["Authorization"].removeprefix("Bearer ") for call in mock.calls]


def test_the_bearer_token_and_timeout_are_sent(api: DownstreamClient, mocked_http: responses.RequestsMock) -> None:
    mocked_http.add(responses.GET, ME, json={"name": "Alice"})
    result = api.get("v1/me", tokens=FakeTokens())
    assert result == ApiResult(ok=True, status=200, data={"name": "Alice"})
    (call,) = mocked_http.calls
    assert call.request.headers["Authorization"] == "Bearer token-1"
    assert call.request.headers["Accept"] == "application/json"
    assert call.request.req_kwargs["timeout"] == 2.5


def test_an_expired_token_is_refreshed_before_the_call(
    api: DownstreamClient, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, json={})
    tokens = FakeTokens(expired=True)
    assert api.get("v1/me", tokens=tokens).ok
    assert tokens.refreshes == 1
    assert bearer_tokens(mocked_http) == ["token-2"]


def test_a_401_refreshes_once_and_retries_once(api: DownstreamClient, mocked_http: responses.RequestsMock) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    mocked_http.add(responses.GET, ME, json={"name": "Alice"})
    tokens = FakeTokens()
    result = api.get("v1/me", tokens=tokens)
    assert result.ok
    assert result.data == {"name": "Alice"}
    assert tokens.refreshes == 1
    assert bearer_tokens(mocked_http) == ["token-1", "token-2"]


def test_a_second_401_means_the_authentication_is_lost(
    api: DownstreamClient, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    tokens = FakeTokens()
    with pytest.raises(AuthenticationLost):
        api.get("v1/me", tokens=tokens)
    assert tokens.refreshes == 1
    assert bearer_tokens(mocked_http) == ["token-1", "token-2"]


@pytest.mark.parametrize("method", sorted(IDEMPOTENT_METHODS))
def test_idempotent_methods_are_retried(
    api: DownstreamClient, mocked_http: responses.RequestsMock, method: str
) -> None:
    mocked_http.add(method, ME, status=401)
    mocked_http.add(method, ME, status=204)
    result = api.request(method, "v1/me", tokens=FakeTokens())
    assert result == ApiResult(ok=True, status=204)
    assert bearer_tokens(mocked_http) == ["token-1", "token-2"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_methods_are_not_retried(
    api: DownstreamClient, mocked_http: responses.RequestsMock, method: str
) -> None:
    mocked_http.add(method, ME, status=401)
    result = api.request(method, "v1/me", tokens=FakeTokens(), json={"amount": 10})
    assert len(mocked_http.calls) == 1
    assert not result.ok
    assert result.status == 401
    assert result.error


def test_a_curable_refresh_failure_is_an_error_not_a_sign_out(
    api: DownstreamClient, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    tokens = FakeTokens(refresh_error=TokenUnavailable("provider down", curable=True))
    result = api.get("v1/me", tokens=tokens)
    assert not result.ok
    assert "not answering" in result.error
    assert len(mocked_http.calls) == 1


def test_a_curable_failure_before_the_call_is_an_error(
    api: DownstreamClient, mocked_http: responses.RequestsMock
) -> None:
    tokens = FakeTokens(expired=True, refresh_error=TokenUnavailable("provider down", curable=True))
    result = api.get("v1/me", tokens=tokens)
    assert not result.ok
    assert result.error
    assert len(mocked_http.calls) == 0


def test_an_incurable_refresh_failure_loses_the_authentication(
    api: DownstreamClient, mocked_http: responses.RequestsMock
) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    tokens = FakeTokens(refresh_error=TokenUnavailable("invalid_grant", curable=False))
    with pytest.raises(AuthenticationLost):
        api.get("v1/me", tokens=tokens)


def test_no_token_at_all_loses_the_authentication(api: DownstreamClient, mocked_http: responses.RequestsMock) -> None:
    with pytest.raises(AuthenticationLost):
        api.get("v1/me", tokens=FakeTokens(token=""))
    assert len(mocked_http.calls) == 0


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        pytest.param({"body": requests.ReadTimeout("slow")}, None, id="read-timeout"),
        pytest.param({"body": requests.ConnectTimeout("slow")}, None, id="connect-timeout"),
        pytest.param({"body": requests.ConnectionError("refused")}, None, id="connection-error"),
        pytest.param({"status": 500}, 500, id="500"),
        pytest.param({"status": 502}, 502, id="502"),
        pytest.param({"status": 503}, 503, id="503"),
        pytest.param({"status": 403}, 403, id="403"),
        pytest.param({"status": 200, "body": "<html>not json</html>"}, 200, id="unreadable"),
    ],
)
def test_outages_and_errors_are_results_never_a_sign_out(
    api: DownstreamClient, mocked_http: responses.RequestsMock, answer: dict, status: int | None
) -> None:
    mocked_http.add(responses.GET, ME, **answer)
    tokens = FakeTokens()
    result = api.get("v1/me", tokens=tokens)
    assert isinstance(result, ApiResult)
    assert not result.ok
    assert result.status == status
    assert result.error
    assert tokens.refreshes == 0
    assert len(mocked_http.calls) == 1


def test_a_5xx_after_a_refresh_is_a_result_too(api: DownstreamClient, mocked_http: responses.RequestsMock) -> None:
    mocked_http.add(responses.GET, ME, status=401)
    mocked_http.add(responses.GET, ME, status=503)
    result = api.get("v1/me", tokens=FakeTokens())
    assert not result.ok
    assert result.status == 503


def test_one_http_session_is_reused(api: DownstreamClient, mocked_http: responses.RequestsMock) -> None:
    session = api.http
    mocked_http.add(responses.GET, ME, json={})
    api.get("v1/me", tokens=FakeTokens())
    api.get("v1/me", tokens=FakeTokens())
    assert api.http is session
    assert isinstance(session, requests.Session)
