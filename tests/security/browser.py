"""A browser stand-in over real HTTP: each hop of the sign-in dance is its own step.

Redirects are never followed automatically, so a test can stop at any hop, alter
the URL (state, code, iss) and replay it. Every response from the app is kept, so
the suite can check afterwards that no code, token or session id leaked into one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from tests.support.browserless import CSRF_FIELD


@dataclass(frozen=True)
class Seen:
    """One response from the app, as the browser received it."""

    url: str
    status: int
    headers: dict[str, str]
    body: str


class Browser:
    """One cookie jar talking to the app at `base_url` (and to the provider it redirects to)."""

    def __init__(
        self,
        base_url: str,
        *,
        cookie_name: str = "gatehouse_session",
        verify: bool | str = True,
        after_sign_in: Callable[[], None] | None = None,
    ):
        self.base_url = base_url
        # What the worker would do after a sign-in (the suite runs no worker process).
        self.after_sign_in = after_sign_in
        self.cookie_name = cookie_name
        self.http = requests.Session()
        self.http.verify = verify
        self.seen: list[Seen] = []
        self.session_ids: set[str] = set()
        self.http.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.url.startswith(self.base_url):
            self.seen.append(Seen(response.url, response.status_code, dict(response.headers), response.text))
            value = response.cookies.get(self.cookie_name)
            if value:
                self.session_ids.add(value)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    # ---- plain requests --------------------------------------------------------------
    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path of the app (or an absolute URL), without following redirects."""
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 10)
        return self.http.get(urljoin(self.base_url, path), **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """POST a form to a path of the app, without following redirects."""
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 10)
        return self.http.post(urljoin(self.base_url, path), data=data or {}, **kwargs)

    def follow(self, response: requests.Response) -> requests.Response:
        """Take one redirect."""
        assert response.is_redirect, f"expected a redirect, got {response.status_code}"
        return self.get(urljoin(response.url, response.headers["Location"]))

    # ---- sign-in hops ------------------------------------------------------------------
    def start_login(self, next_path: str | None = None) -> str:
        """GET /login; returns the provider's authorize URL the app redirected to."""
        response = self.get("/login", params={"next": next_path} if next_path is not None else None)
        assert response.status_code == 302, (response.status_code, response.text[:500])
        return response.headers["Location"]

    def authorize(self, authorize_url: str, login_as: str = "alice") -> str:
        """Sign in at the provider as `login_as`; returns the callback URL it redirected to."""
        response = self.http.get(authorize_url, params={"login_as": login_as}, allow_redirects=False, timeout=10)
        assert response.status_code == 302, (response.status_code, response.text[:500])
        return response.headers["Location"]

    def callback(self, callback_url: str) -> requests.Response:
        """Bring the provider's answer to the app."""
        return self.get(callback_url)

    def sign_in(self, login_as: str = "alice", next_path: str | None = None) -> requests.Response:
        """The whole happy path; returns the app's callback response (a redirect to the landing page)."""
        response = self.callback(self.authorize(self.start_login(next_path), login_as))
        assert response.status_code == 302, (response.status_code, response.text[:500])
        assert "/auth/" not in response.headers["Location"], response.headers["Location"]
        if self.after_sign_in is not None:
            self.after_sign_in()
        return response

    # ---- what the browser holds ----------------------------------------------------------
    @property
    def session_id(self) -> str | None:
        """The session cookie's value, if any."""
        return self.http.cookies.get(self.cookie_name)

    def set_session_id(self, value: str) -> None:
        """Plant a session cookie (a copied or made-up one)."""
        self.http.cookies.set(self.cookie_name, value, domain="127.0.0.1", path="/")

    def csrf_token(self, path: str = "/profile") -> str:
        """The CSRF token of the first form on a page."""
        page = self.get(path)
        match = CSRF_FIELD.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def signed_in_as(self) -> str | None:
        """Who the app says is signed in (the JSON dashboard call would cost a provider hit)."""
        page = self.get("/")
        match = re.search(r'data-testid="signed-in-as">([^<]*)<', page.text)
        return match.group(1) if match else None
