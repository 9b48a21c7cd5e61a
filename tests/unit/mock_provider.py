"""A fake OpenID provider served through `responses`: discovery, JWKS, token, userinfo and end-session."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "https://idp.example.test"
CLIENT_ID = "gatehouse-unit"
CLIENT_SECRET = "unit-client-secret"

# A claim override with this value removes the claim instead of setting it.
DROP = object()


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_token(claims: Mapping[str, Any], key: RSAKey, *, header: Mapping[str, Any] | None = None) -> str:
    """A compact JWS of `claims` signed with `key` (RS256 and the key's kid unless `header` says otherwise)."""
    protected = {"alg": "RS256", "kid": key.kid, **(header or {})}
    protected = {name: value for name, value in protected.items() if value is not DROP}
    return jwt.encode(protected, dict(claims), key, algorithms=[protected["alg"]])


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated with `overrides`; an override of DROP deletes the claim."""
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not DROP}


@dataclass
class Grant:
    """One approved authorization request, waiting for its code to be exchanged."""

    subject: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    # The `auth_time` the ID token carries because the request asked for it (see `auth_time_when_asked`).
    auth_time: int | None = None
    used: bool = False


@dataclass
class MockProvider:
    """The provider's state and its HTTP endpoints, registered on a `responses` mock."""

    key: RSAKey
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    access_token_lifetime: int = 300
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> subject
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> subject
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject -> extra claims
    token_requests: list[dict[str, str]] = field(default_factory=list)
    userinfo_requests: list[str] = field(default_factory=list)
    # Knobs tests turn to make the provider misbehave.
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    userinfo_overrides: dict[str, Any] = field(default_factory=dict)
    discovery_overrides: dict[str, Any] = field(default_factory=dict)
    refresh_error: str | None = None
    token_endpoint_down: bool = False
    # Like oidc-provider: put `auth_time` in the ID token only when the authorization request asks for it
    # (an `auth_time` in its `claims` parameter's id_token member, or `max_age`). Off: only what tests set.
    auth_time_when_asked: bool = False

    @property
    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        return apply_overrides(document, self.discovery_overrides)

    def register(self, mock: responses.RequestsMock) -> None:
        """Serve the provider's endpoints from `mock`."""
        mock.add_callback(responses.GET, f"{self.issuer}/.well-known/openid-configuration", self._discovery)
        mock.add_callback(responses.GET, f"{self.issuer}/jwks", self._jwks)
        mock.add_callback(responses.POST, f"{self.issuer}/token", self._token)
        mock.add_callback(responses.GET, f"{self.issuer}/userinfo", self._userinfo)

    # What a browser does at the provider.

    def approve(self, authorize_url: str, subject: str = "alice", **claims: Any) -> str:
        """Sign `subject` in at the authorize endpoint and return the authorization code."""
        params = authorize_params(authorize_url)
        assert authorize_url.startswith(f"{self.issuer}/authorize?")
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            subject=subject,
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            auth_time=int(time.time()) if self.auth_time_when_asked and asks_for_auth_time(params) else None,
        )
        self.users.setdefault(subject, {}).update(claims)
        return code

    # Tokens.

    def id_token_claims(self, subject: str, nonce: str | None, /, **overrides: Any) -> dict[str, Any]:
        """The claims of an ID token for `subject`."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "email": f"{subject}@example.test",
            "name": subject.title(),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.users.get(subject, {}))
        return apply_overrides(claims, overrides)

    def id_token(self, subject: str, nonce: str | None, /, **overrides: Any) -> str:
        """A signed ID token for `subject`, with the provider's current misbehaviour applied."""
        return sign_token(self.id_token_claims(subject, nonce, **{**self.id_token_overrides, **overrides}), self.key)

    def issue(self, subject: str, nonce: str | None, auth_time: int | None = None) -> dict[str, Any]:
        """A token response for `subject` (its ID token with `auth_time`, if given, unless tests override it)."""
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        asked = {} if auth_time is None else {"auth_time": auth_time}
        self.access_tokens[access] = subject
        self.refresh_tokens[refresh] = subject
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "refresh_token": refresh,
            "id_token": self.id_token(subject, nonce, **{**asked, **self.id_token_overrides}),
            "scope": "openid email profile",
        }

    def revoke(self, subject: str) -> None:
        """Forget every token of `subject` (as an admin's "sign out everywhere" would)."""
        for tokens in (self.access_tokens, self.refresh_tokens):
            for token in [token for token, owner in tokens.items() if owner == subject]:
                del tokens[token]

    def refresh_grants(self) -> list[dict[str, str]]:
        """The refresh_token requests received so far."""
        return [body for body in self.token_requests if body.get("grant_type") == "refresh_token"]

    # Endpoint callbacks.

    def _discovery(self, request: Any) -> tuple[int, dict[str, str], str]:
        """GET /.well-known/openid-configuration."""
        return 200, {"Content-Type": "application/json"}, json.dumps(self.discovery)

    def _jwks(self, request: Any) -> tuple[int, dict[str, str], str]:
        """GET /jwks: the public half of the signing key."""
        return 200, {"Content-Type": "application/json"}, json.dumps({"keys": [self.key.as_dict(private=False)]})

    def _token(self, request: Any) -> tuple[int, dict[str, str], Any]:
        """POST /token: authorization_code and refresh_token grants for the authenticated client."""
        body = {name: values[0] for name, values in parse_qs(request.body or "").items()}
        self.token_requests.append(body)
        if self.token_endpoint_down:
            return 0, {}, requests.ConnectionError("the token endpoint is down")
        if not self._client_authenticated(request.headers.get("Authorization", ""), body):
            return _oauth_error(401, "invalid_client")
        if body.get("grant_type") == "authorization_code":
            return self._exchange_code(body)
        if body.get("grant_type") == "refresh_token":
            return self._refresh(body)
        return _oauth_error(400, "unsupported_grant_type")

    def _client_authenticated(self, authorization: str, body: Mapping[str, str]) -> bool:
        """client_secret_basic or client_secret_post with our client's credentials."""
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        else:
            client_id, secret = body.get("client_id", ""), body.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret

    def _exchange_code(self, body: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        """Trade a code (once, with the right redirect URI and PKCE verifier) for tokens."""
        grant = self.grants.get(body.get("code", ""))
        if grant is None or grant.used or grant.redirect_uri != body.get("redirect_uri"):
            return _oauth_error(400, "invalid_grant")
        grant.used = True
        # PKCE (RFC 7636): the verifier must hash to the challenge sent to /authorize.
        verifier = body.get("code_verifier", "")
        if grant.code_challenge_method != "S256" or b64url(hashlib.sha256(verifier.encode()).digest()) != (
            grant.code_challenge
        ):
            return _oauth_error(400, "invalid_grant")
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(self.issue(grant.subject, grant.nonce, grant.auth_time)),
        )

    def _refresh(self, body: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        """Trade a refresh token (once: they rotate) for new tokens."""
        if self.refresh_error:
            return _oauth_error(400, self.refresh_error)
        subject = self.refresh_tokens.pop(body.get("refresh_token", ""), None)
        if subject is None:
            return _oauth_error(400, "invalid_grant")
        return 200, {"Content-Type": "application/json"}, json.dumps(self.issue(subject, None))

    def _userinfo(self, request: Any) -> tuple[int, dict[str, str], str]:
        """GET /userinfo: the claims of the access token's owner, or 401."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.userinfo_requests.append(token)
        subject = self.access_tokens.get(token)
        if subject is None:
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, ""
        claims = {"sub": subject, "email": f"{subject}@example.test", "name": subject.title()}
        claims.update(self.users.get(subject, {}))
        claims = apply_overrides(claims, self.userinfo_overrides)
        return 200, {"Content-Type": "application/json"}, json.dumps(claims)


def authorize_params(url: str) -> dict[str, str]:
    """The query parameters of an authorize (or any) URL, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def asks_for_auth_time(params: Mapping[str, str]) -> bool:
    """Whether an authorization request asks for `auth_time` in the ID token (OIDC Core 3.1.2.1 and 5.5)."""
    if "max_age" in params:
        return True
    try:
        requested = json.loads(params.get("claims", "{}"))
    except ValueError:
        return False
    id_token = requested.get("id_token") if isinstance(requested, dict) else None
    return isinstance(id_token, dict) and "auth_time" in id_token


def callback_query(authorize_url: str, **params: str) -> str:
    """The query string the provider sends back to the redirect URI."""
    return urlencode({"state": authorize_params(authorize_url)["state"], **params})


def _oauth_error(status: int, error: str) -> tuple[int, dict[str, str], str]:
    """An OAuth 2.0 error response."""
    return status, {"Content-Type": "application/json"}, json.dumps({"error": error})
