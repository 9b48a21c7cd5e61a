"""The configured OpenID provider, one per app: discovery, the Authlib client and keys."""

from __future__ import annotations

from typing import Any

import requests
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, current_app

from clients.outbound import bound, stateless_session
from oidc.id_token import allowed_algorithms, validate_id_token
from oidc.keys import JwksCache
from oidc.logout_token import LogoutRequest, validate_logout_token

_EXTENSION = "gatehouse.oidc"


# The discovery fields Authlib's client may see: the endpoints OpenID Connect defines, nothing else.
# Authlib passes whatever `load_server_metadata` returns to its OAuth client as keyword arguments,
# over our own settings, so a provider's `code_challenge_method`, `token_endpoint_auth_method`,
# `default_timeout` or `verify` would otherwise reconfigure the client.
CLIENT_METADATA = ("authorization_endpoint", "token_endpoint", "end_session_endpoint")


class ProviderError(Exception):
    """The provider could not be used (unreachable, or its discovery document is wrong)."""


class BoundedOAuth2Session(OAuth2Session):
    """Authlib's requests client whose every call is capped in size and total time (OIDC_* settings)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        config = current_app.config
        bound(
            self, max_bytes=config["OIDC_MAX_RESPONSE_BYTES"], total_seconds=config["OIDC_TIMEOUT"], target="provider"
        )


class DiscoveryBoundApp(FlaskOAuth2App):
    """Authlib's Flask client, shown only the discovery fields that name endpoints, over bounded HTTP."""

    client_cls = BoundedOAuth2Session

    def load_server_metadata(self) -> dict[str, Any]:
        """The endpoints from discovery (the whole document stays in `server_metadata` for our checks)."""
        full = super().load_server_metadata()
        return {key: full[key] for key in CLIENT_METADATA if isinstance(full.get(key), str)}


class ProviderOAuth(OAuth):
    """An Authlib registry whose OAuth 2 clients are `DiscoveryBoundApp`s."""

    oauth2_client_cls = DiscoveryBoundApp


class Provider:
    """Discovery, the Authlib OAuth client and the JWKS cache of the app's provider."""

    def __init__(self, app: Flask):
        self.issuer: str = app.config["OIDC_ISSUER"]
        self.client_id: str = app.config["OIDC_CLIENT_ID"]
        self.timeout: float = app.config["OIDC_TIMEOUT"]
        # Authlib's Flask OAuth registry is a single-app object, so each app gets its own.
        oauth = ProviderOAuth()
        oauth.init_app(app)
        # types-Authlib leaves `register` unannotated; it returns an `oauth2_client_cls` instance.
        self.client: DiscoveryBoundApp = oauth.register(  # type: ignore[no-untyped-call]
            "oidc",
            client_id=self.client_id,
            client_secret=app.config["OIDC_CLIENT_SECRET"],
            # The issuer is compared exactly (Auth0's ends with "/"), but the
            # discovery URL must not get a double slash.
            server_metadata_url=f"{self.issuer.rstrip('/')}/.well-known/openid-configuration",
            client_kwargs={
                "scope": app.config["OIDC_SCOPES"],
                "code_challenge_method": "S256",
                "default_timeout": self.timeout,
            },
        )
        self.keys = JwksCache(self._fetch_jwks)
        # JWKS and UserInfo calls: no cookies kept, capped like the token endpoint's.
        self.http = bound(
            stateless_session(),
            max_bytes=app.config["OIDC_MAX_RESPONSE_BYTES"],
            total_seconds=self.timeout,
            target="provider",
        )

    def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once and checked against OIDC_ISSUER."""
        try:
            self.client.load_server_metadata()
        except (requests.RequestException, ValueError) as error:
            raise ProviderError("the sign-in provider could not be reached") from error
        metadata = dict(self.client.server_metadata)
        if metadata.get("issuer") != self.issuer:
            # A discovery document for another issuer means misconfiguration or a
            # mix-up attack: stop before sending anyone there.
            raise ProviderError("the provider's discovery document names another issuer")
        return metadata

    def algorithms(self) -> list[str]:
        """ID token algorithms accepted from this provider."""
        return allowed_algorithms(self.metadata().get("id_token_signing_alg_values_supported"))

    # Every token the provider signs is checked here, against this provider's issuer, client id,
    # keys and algorithms: the callback's and a refresh's ID tokens, and back-channel logout tokens.

    def validate_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        """The claims of an ID token from this provider (`nonce`: the sign-in's; None on refresh).

        Raises IdTokenError for a token that fails any check, ProviderError when the provider cannot be used.
        """
        return validate_id_token(
            id_token,
            keys=self.keys,
            issuer=self.issuer,
            client_id=self.client_id,
            algorithms=self.algorithms(),
            nonce=nonce,
        )

    def validate_logout_token(self, logout_token: Any) -> LogoutRequest:
        """What a back-channel logout token from this provider asks; raises LogoutTokenError or ProviderError."""
        return validate_logout_token(
            logout_token, keys=self.keys, issuer=self.issuer, client_id=self.client_id, algorithms=self.algorithms()
        )

    def _fetch_jwks(self) -> dict[str, Any]:
        jwks_uri = self.metadata().get("jwks_uri")
        if not jwks_uri:
            raise ProviderError("the provider publishes no jwks_uri")
        try:
            response = self.http.get(jwks_uri, timeout=self.timeout)
            response.raise_for_status()
            jwks: dict[str, Any] = response.json()
            return jwks
        except (requests.RequestException, ValueError) as error:
            raise ProviderError("the provider's signing keys could not be fetched") from error


def init_oidc(app: Flask) -> None:
    """Register the app's provider (nothing is fetched until the first sign-in)."""
    app.extensions[_EXTENSION] = Provider(app)


def oidc_provider(app: Flask | None = None) -> Provider:
    """The current app's provider."""
    provider: Provider = (app or current_app).extensions[_EXTENSION]
    return provider
