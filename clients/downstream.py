"""The downstream API client: the user's bearer token, refresh, and a clean end on 401.

Every call returns an `ApiResult` (ok, status, data, error) rather than raising
network errors at the page. The one exception is `AuthenticationLost`: the API
refused the user's token and a refresh could not cure it, so the app must end the
session (see errors.py). Timeouts and 5xx never sign anyone out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

import requests
from flask import Flask, current_app

from clients.outbound import ResponseTooLarge, bound, stateless_session

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_EXTENSION = "gatehouse.downstream"


class AuthenticationLost(Exception):
    """The API refuses the user's credentials and refreshing did not help; `reason` says which way (metrics)."""

    def __init__(self, message: str, *, reason: str = "api_refused"):
        super().__init__(message)
        self.reason = reason


class TokenUnavailable(Exception):
    """A token source could not give a token; `curable` is False when only a new sign-in helps."""

    def __init__(self, reason: str, *, curable: bool):
        super().__init__(reason)
        self.curable = curable


class TokenSource(Protocol):
    """Where the client gets access tokens (the session, in the app)."""

    def current(self) -> str | None:
        """A usable access token, refreshed first if expired."""

    def refresh(self, rejected: str | None = None) -> str:
        """A new access token to replace `rejected` (the one the API refused), or TokenUnavailable."""


@dataclass(frozen=True)
class ApiResult:
    """The uniform answer of every call."""

    ok: bool
    status: int | None = None
    data: Any = None
    error: str | None = None


class DownstreamClient:
    """One HTTP connection pool with explicit timeouts, shared by the process, holding no per-user state.

    Each call sends only the caller's bearer token: cookies are never kept, and
    redirects are never followed (a redirect would carry the token elsewhere), so
    nothing of one user's call can reach another's.
    """

    def __init__(self, base_url: str, *, timeout: float, http: requests.Session | None = None):
        self.base_url = base_url
        self.timeout = timeout
        self.http = http or stateless_session()

    def get(self, path: str, *, tokens: TokenSource, **kwargs: Any) -> ApiResult:
        """GET a resource as the signed-in user."""
        return self.request("GET", path, tokens=tokens, **kwargs)

    def request(self, method: str, path: str, *, tokens: TokenSource, **kwargs: Any) -> ApiResult:
        """Call the API; refresh and retry once on 401 (idempotent methods only)."""
        method = method.upper()
        token = self._token(tokens.current)
        if isinstance(token, ApiResult):
            return token
        response = self._send(method, path, token, **kwargs)
        if isinstance(response, ApiResult) or response.status_code != 401:
            return self._result(response)

        rejected = token
        token = self._token(lambda: tokens.refresh(rejected))
        if isinstance(token, ApiResult):
            return token
        if method not in IDEMPOTENT_METHODS:
            # The request was refused, not processed, but repeating a non-idempotent
            # call is the caller's decision: report, with the session renewed.
            return ApiResult(ok=False, status=401, error="Your sign-in was renewed. Please try again.")
        response = self._send(method, path, token, **kwargs)
        if not isinstance(response, ApiResult) and response.status_code == 401:
            raise AuthenticationLost("the API refused a freshly refreshed token", reason="api_refused")
        return self._result(response)

    @staticmethod
    def _token(fetch: Callable[[], str | None]) -> str | ApiResult:
        try:
            token = fetch()
        except TokenUnavailable as error:
            if not error.curable:
                raise AuthenticationLost(str(error), reason="refresh_failed") from error
            return ApiResult(ok=False, error="The sign-in provider is not answering. Please try again shortly.")
        if not token:
            raise AuthenticationLost("no access token in the session", reason="no_token")
        return token

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response | ApiResult:
        url = urljoin(self.base_url, path) if path else self.base_url
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            return self.http.request(
                method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.Timeout:
            log.warning("downstream API timed out: %s %s", method, url)
            return ApiResult(ok=False, error="The service took too long to answer. Please try again.")
        except ResponseTooLarge:
            log.warning("downstream API answer too large: %s %s", method, url)
            return ApiResult(ok=False, error="The service sent an answer too large to show.")
        except requests.RequestException as error:
            log.warning("downstream API unreachable: %s %s (%s)", method, url, type(error).__name__)
            return ApiResult(ok=False, error="The service could not be reached. Please try again.")

    @staticmethod
    def _result(response: requests.Response | ApiResult) -> ApiResult:
        if isinstance(response, ApiResult):
            return response
        if response.status_code >= 500:
            return ApiResult(
                ok=False, status=response.status_code, error="The service is having trouble. Please try again."
            )
        if response.status_code >= 400:
            return ApiResult(ok=False, status=response.status_code, error="The service refused the request.")
        if response.is_redirect or 300 <= response.status_code < 400:
            # Not followed: the bearer token would go wherever the Location says.
            log.warning("downstream API answered a redirect, which is not followed: %s", response.status_code)
            return ApiResult(ok=False, status=response.status_code, error="The service sent an unexpected answer.")
        if not response.content:
            # 204 No Content, or a HEAD: success with nothing to read.
            return ApiResult(ok=True, status=response.status_code)
        try:
            data = response.json()
        except ValueError:
            return ApiResult(ok=False, status=response.status_code, error="The service sent an unreadable answer.")
        return ApiResult(ok=True, status=response.status_code, data=data)


def init_downstream(app: Flask) -> None:
    """Build the app's API client (no connection is opened yet), its answers capped in size and total time."""
    http = bound(
        stateless_session(),
        max_bytes=app.config["API_MAX_RESPONSE_BYTES"],
        total_seconds=app.config["API_TIMEOUT"],
        target="api",
    )
    app.extensions[_EXTENSION] = DownstreamClient(
        app.config["API_BASE_URL"], timeout=app.config["API_TIMEOUT"], http=http
    )


def downstream_api(app: Flask | None = None) -> DownstreamClient:
    """The current app's downstream API client."""
    client: DownstreamClient = (app or current_app).extensions[_EXTENSION]
    return client
