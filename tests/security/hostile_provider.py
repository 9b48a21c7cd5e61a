"""A hostile OpenID provider: honest by default, and every answer corruptible by the test.

It serves discovery, JWKS, authorize, token, userinfo and end-session on a real
local port. The browser helper signs a user in by adding `login_as=<sub>` to the
authorize URL (like the development provider's form). Each test changes
`provider.behaviour` to corrupt claims, headers, signatures, keys, the discovery
document, UserInfo, error and refresh responses, and counts the requests the app
made (`provider.hits(...)`) to prove what it did *not* call.

Every login belongs to a provider session whose `sid` the ID tokens carry
(`provider.sids[sub]` lists them in login order), and `provider.logout_token(...)`
mints Back-Channel Logout tokens signed with the provider's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request

from tests.security.jose_forge import RsaKey, compact, rsa_key
from tests.security.servers import ThreadedServer

CLIENT_ID = "gatehouse-security"
CLIENT_SECRET = "gatehouse-security-secret"
# Back-Channel Logout 1.0, section 2.4 (spelled out here, not imported from the app under test).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class _Drop:
    """Marks a claim or field the provider must leave out."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()

Forge = Callable[[dict[str, Any], dict[str, Any]], str]


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` updated with `changes`, where a DROP value removes the key."""
    result = dict(base)
    for key, value in changes.items():
        if value is DROP:
            result.pop(key, None)
        else:
            result[key] = value
    return result


@dataclass
class Behaviour:
    """How the provider answers; each test sets only what it corrupts."""

    discovery: dict[str, Any] = field(default_factory=dict)
    jwks: Callable[[], dict[str, Any]] | None = None
    id_token_header: dict[str, Any] = field(default_factory=dict)
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    # Builds the login ID token from the (already changed) header and claims.
    forge: Forge | None = None
    # Changes the parameters of the authorization response (code, state, iss).
    authorization_response: dict[str, Any] = field(default_factory=dict)
    send_iss: bool = True
    token_error: tuple[int, dict[str, Any]] | None = None
    userinfo: dict[str, Any] = field(default_factory=dict)
    # UserInfo (the default downstream API) echoes the bearer token back in its data.
    userinfo_echoes_token: bool = False
    refresh_claims: dict[str, Any] = field(default_factory=dict)
    refresh_id_token: bool = True
    access_token_lifetime: int = 3600
    # Paths answered abusively: "trickle" (a byte every 0.3 s, for up to 30 s) or "huge" (64 MiB).
    abuse: dict[str, str] = field(default_factory=dict)
    # The provider session (`sid`) logins belong to: None starts a new one at every login.
    provider_sid: str | None = None
    send_sid: bool = True
    # Called before UserInfo answers (a test holds a sign-in there, after its ID token was issued).
    userinfo_gate: Callable[[], None] | None = None


@dataclass
class Grant:
    """What one authorization code (or refresh token) stands for."""

    sub: str
    nonce: str | None = None
    code_challenge: str | None = None
    redirect_uri: str | None = None
    sid: str | None = None


def abusive_answer(kind: str) -> Response:
    """A JSON-looking answer that never ends in time ("trickle") or is far too big ("huge"); bounded either way."""

    def trickle() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(100):
            time.sleep(0.3)
            yield b" "

    def huge() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(1024):
            yield b" " * 65536

    return Response(trickle() if kind == "trickle" else huge(), mimetype="application/json")


class HostileProvider:
    """The provider server and its state; `reset()` between tests."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = ThreadedServer(self._build_app(), ssl_context=ssl_context)
        self.issuer = self.server.url
        self._lock = threading.Lock()
        self.reset()

    # ---- lifecycle -----------------------------------------------------------------
    def start(self) -> HostileProvider:
        """Start serving."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def reset(self) -> None:
        """Honest behaviour, one signing key, empty logs."""
        with self._lock:
            self.behaviour = Behaviour()
            self.keys: list[RsaKey] = [rsa_key("key-1")]
            self.signing_key: RsaKey = self.keys[0]
            self.requests: list[tuple[str, str, dict[str, str]]] = []
            self.codes: dict[str, Grant] = {}
            self.refresh_tokens: dict[str, Grant] = {}
            self.access_tokens: dict[str, str] = {}
            self.issued: list[str] = []  # every code and token handed out, for leak checks
            self.sids: dict[str, list[str]] = {}  # the provider session of each login, per sub
            self.end_session_calls: list[dict[str, str]] = []

    # ---- what tests read -----------------------------------------------------------
    def hits(self, path: str) -> int:
        """How many requests reached `path` (e.g. "/userinfo", "/jwks", "/token")."""
        with self._lock:
            return sum(1 for _method, seen, _args in self.requests if seen == path)

    def token_requests(self, grant_type: str | None = None) -> int:
        """How many token requests came in (optionally of one grant type)."""
        with self._lock:
            return sum(
                1
                for _method, seen, form in self.requests
                if seen == "/token" and (grant_type is None or form.get("grant_type") == grant_type)
            )

    def authorize_params(self) -> list[dict[str, str]]:
        """The query of every authorization request a browser brought here."""
        with self._lock:
            return [args for _method, seen, args in self.requests if seen == "/authorize"]

    # ---- what tests change ---------------------------------------------------------
    def rotate_to(self, key: RsaKey, *, keep_old: bool = False) -> None:
        """Sign with `key` from now on and publish it (with or without the old keys)."""
        with self._lock:
            self.keys = [*self.keys, key] if keep_old else [key]
            self.signing_key = key

    def honest_claims(self, sub: str, nonce: str | None, sid: str | None = None) -> dict[str, Any]:
        """The claims an honest provider puts in an ID token for `sub`."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "email": f"{sub}@example.org",
            "name": sub.title(),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if sid is not None:
            claims["sid"] = sid
        return claims

    def honest_header(self) -> dict[str, Any]:
        """The header an honest provider signs with."""
        return {"alg": "RS256", "typ": "JWT", "kid": self.signing_key.kid}

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        """Sign honestly with the current key (whatever the header says)."""
        return compact(header, claims, self.signing_key.signer(header.get("alg", "RS256")))

    def logout_token(
        self,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        *,
        forge: Forge | None = None,
    ) -> str:
        """A Back-Channel Logout token: honest iss/aud/iat/exp/jti/events plus `claims` (DROP removes one).

        The caller names whom it logs out (`sid` and/or `sub`). The header is
        `typ: logout+jwt` with the current key, changed by `header`; `forge` builds
        the token from the final header and claims instead of honest signing. The
        token is added to `issued`, so the leak check looks for it in logs and pages.
        """
        now = int(time.time())
        honest = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        final_claims = merged(honest, claims or {})
        final_header = merged({"alg": "RS256", "typ": "logout+jwt", "kid": self.signing_key.kid}, header or {})
        token = forge(final_header, final_claims) if forge else self.sign(final_header, final_claims)
        with self._lock:
            self.issued.append(token)
        return token

    # ---- the provider --------------------------------------------------------------
    def _discovery(self) -> dict[str, Any]:
        base = self.issuer
        document = {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/end-session",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "authorization_response_iss_parameter_supported": True,
        }
        return merged(document, self.behaviour.discovery)

    def _id_token(self, grant: Grant, *, refresh: bool) -> str:
        behaviour = self.behaviour
        if refresh:
            claims = merged(self.honest_claims(grant.sub, None, grant.sid), behaviour.refresh_claims)
            return self.sign(self.honest_header(), claims)
        claims = merged(self.honest_claims(grant.sub, grant.nonce, grant.sid), behaviour.id_token_claims)
        header = merged(self.honest_header(), behaviour.id_token_header)
        if behaviour.forge is not None:
            return behaviour.forge(header, claims)
        return self.sign(header, claims)

    def _issue_tokens(self, grant: Grant, *, refresh: bool) -> dict[str, Any]:
        access, refresh_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        id_token = self._id_token(grant, refresh=refresh)
        with self._lock:
            self.access_tokens[access] = grant.sub
            self.refresh_tokens[refresh_token] = Grant(sub=grant.sub, sid=grant.sid)
            self.issued += [access, refresh_token, id_token]
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.behaviour.access_token_lifetime,
            "refresh_token": refresh_token,
            "scope": "openid email profile",
        }
        if not refresh or self.behaviour.refresh_id_token:
            body["id_token"] = id_token
        return body

    def _build_app(self) -> Flask:
        app = Flask("hostile_provider")

        @app.before_request
        def record() -> Response | None:
            args = dict(request.form) if request.method == "POST" else dict(request.args)
            with self._lock:
                self.requests.append((request.method, request.path, args))
            kind = self.behaviour.abuse.get(request.path)
            return abusive_answer(kind) if kind else None

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            return jsonify(self._discovery())

        @app.get("/jwks")
        def jwks() -> Response:
            if self.behaviour.jwks is not None:
                return jsonify(self.behaviour.jwks())
            return jsonify({"keys": [key.public_jwk() for key in self.keys]})

        @app.get("/authorize")
        def authorize() -> Response:
            args = request.args
            code = secrets.token_urlsafe(24)
            behaviour = self.behaviour
            sid = (behaviour.provider_sid or secrets.token_urlsafe(16)) if behaviour.send_sid else None
            grant = Grant(
                sub=args.get("login_as", "alice"),
                nonce=args.get("nonce"),
                code_challenge=args.get("code_challenge") if args.get("code_challenge_method") == "S256" else None,
                redirect_uri=args.get("redirect_uri"),
                sid=sid,
            )
            with self._lock:
                self.codes[code] = grant
                self.issued.append(code)
                if sid is not None:
                    self.sids.setdefault(grant.sub, []).append(sid)
            params: dict[str, Any] = {"code": code, "state": args.get("state")}
            if self.behaviour.send_iss:
                params["iss"] = self.issuer
            params = merged(params, self.behaviour.authorization_response)
            return redirect(f"{args['redirect_uri']}?{urlencode(params)}")

        @app.post("/token")
        def token() -> Response | tuple[Response, int]:
            if self.behaviour.token_error is not None:
                status, body = self.behaviour.token_error
                return jsonify(body), status
            if request.authorization is None or (
                request.authorization.username,
                request.authorization.password,
            ) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify(error="invalid_client"), 401
            form = request.form
            if form.get("grant_type") == "authorization_code":
                with self._lock:
                    grant = self.codes.pop(form.get("code", ""), None)
                if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                    return jsonify(error="invalid_grant"), 400
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if grant.code_challenge is None or challenge.decode() != grant.code_challenge:
                    return jsonify(error="invalid_grant", error_description="PKCE check failed"), 400
                return jsonify(self._issue_tokens(grant, refresh=False))
            if form.get("grant_type") == "refresh_token":
                with self._lock:
                    grant = self.refresh_tokens.get(form.get("refresh_token", ""))
                if grant is None:
                    return jsonify(error="invalid_grant"), 400
                return jsonify(self._issue_tokens(grant, refresh=True))
            return jsonify(error="unsupported_grant_type"), 400

        @app.get("/userinfo")
        def userinfo() -> Response | tuple[Response, int]:
            if self.behaviour.userinfo_gate is not None:
                self.behaviour.userinfo_gate()
            token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
            with self._lock:
                sub = self.access_tokens.get(token)
            if sub is None:
                return jsonify(error="invalid_token"), 401
            claims: dict[str, Any] = {"sub": sub, "email": f"{sub}@example.org", "name": sub.title(), "plan": "gold"}
            if self.behaviour.userinfo_echoes_token:
                claims |= {"access_token": token, "nested": [{"token": token, "refresh_token": token}]}
            return jsonify(merged(claims, self.behaviour.userinfo))

        @app.get("/end-session")
        def end_session() -> str:
            with self._lock:
                self.end_session_calls.append(dict(request.args))
            return "signed out at the provider"

        return app


class Recorder:
    """A second listener that records every hit: nothing should ever call it."""

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        self.hits: list[str] = []
        self._body = body or {"keys": []}
        self.server = ThreadedServer(self._app)
        self.url = self.server.url

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.hits.append(environ.get("PATH_INFO", ""))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(self._body).encode()]

    def start(self) -> Recorder:
        """Start serving."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()
