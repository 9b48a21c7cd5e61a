"""The configured OpenID providers: for each, discovery, the Authlib client and keys, and the checks of its tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, current_app

from clients.outbound import bound, stateless_session
from oidc.id_token import IdTokenError, allowed_algorithms, validate_id_token
from oidc.keys import JwksCache
from oidc.logout_token import LogoutRequest, validate_logout_token
from provider_settings import TENANT_ID, TENANT_PLACEHOLDER, ProviderSettings

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
    """Discovery, the Authlib OAuth client and the JWKS cache of one configured provider."""

    def __init__(self, app: Flask, settings: ProviderSettings, oauth: ProviderOAuth):
        self.settings = settings
        self.name = settings.name
        self.label = settings.label
        # Exact, or a template holding {tenantid}: `issuer_of` gives a token's own issuer.
        self.issuer = settings.issuer
        self.client_id = settings.client_id
        head, _, tail = settings.issuer.partition(TENANT_PLACEHOLDER)
        tenant = TENANT_ID.pattern.removeprefix("^").removesuffix("\\Z") if settings.is_template else ""
        self._issuer_pattern = re.compile(
            re.escape(head) + tenant + (re.escape(tail) if settings.is_template else "") + r"\Z"
        )
        self.timeout: float = app.config["OIDC_TIMEOUT"]
        # types-Authlib leaves `register` unannotated; it returns an `oauth2_client_cls` instance.
        self.client: DiscoveryBoundApp = oauth.register(  # type: ignore[no-untyped-call]
            settings.name,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=settings.discovery_url,
            client_kwargs={
                "scope": settings.scopes,
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

    @property
    def keeps_id_token(self) -> bool:
        """True when sign-out names the session to this provider by its ID token (so sessions store it)."""
        return self.settings.logout_hint == "id_token"

    def logout_hint(self, id_token: str | None) -> dict[str, str]:
        """How an end-session request names the session (its LOGOUT_HINT); empty when it cannot."""
        if self.settings.logout_hint == "client_id":
            return {"client_id": self.client_id}
        return {"id_token_hint": id_token} if id_token else {}

    def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once and checked against the configured issuer (or its template)."""
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

    def issuer_of(self, claims: Mapping[str, Any]) -> str:
        """The issuer a token from this provider must name: ours, or our template filled with the token's `tid`.

        Raises IdTokenError for a template issuer when `tid` is missing, malformed or not an allowed tenant.
        """
        if not self.settings.is_template:
            return self.issuer
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not TENANT_ID.match(tenant):
            raise IdTokenError("the token names no usable tenant (tid)")
        if self.settings.tenants and tenant not in self.settings.tenants:
            raise IdTokenError("the token's tenant is not allowed")
        return self.issuer.replace(TENANT_PLACEHOLDER, tenant)

    def issues(self, issuer: str) -> bool:
        """True if `issuer` is this provider's (for a template: any tenant's, before the token is checked)."""
        return bool(self._issuer_pattern.match(issuer))

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
            issuer=self.issuer_of,
            client_id=self.client_id,
            algorithms=self.algorithms(),
            nonce=nonce,
        )

    def validate_logout_token(self, logout_token: Any) -> LogoutRequest:
        """What a back-channel logout token from this provider asks; raises LogoutTokenError or ProviderError."""
        return validate_logout_token(
            logout_token, keys=self.keys, issuer=self.issuer_of, client_id=self.client_id, algorithms=self.algorithms()
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


class Providers:
    """The app's providers, in the order configured (the first is the one a single-provider app has)."""

    def __init__(self, providers: Sequence[Provider]):
        self.all = tuple(providers)
        self._by_name = {provider.name: provider for provider in providers}

    @property
    def several(self) -> bool:
        """True when people choose among several providers (the OIDC_PROVIDERS form)."""
        return not self.all[0].settings.single

    def named(self, name: str | None) -> Provider | None:
        """The provider of that name, or None."""
        return self._by_name.get(name or "")

    def issuing(self, issuer: str | None) -> Provider | None:
        """The provider whose tokens name `issuer`, or None."""
        return next((provider for provider in self.all if issuer and provider.issues(issuer)), None)

    @property
    def trusted_for_email(self) -> tuple[str, ...]:
        """The issuers of the providers whose verified addresses may link accounts (OIDC_<NAME>_TRUST_EMAIL).

        Never an issuer template: the settings refuse one (provider_settings.py).
        """
        return tuple(provider.issuer for provider in self.all if provider.settings.trust_email)


def init_oidc(app: Flask) -> None:
    """Register the app's providers (nothing is fetched until the first sign-in)."""
    # Authlib's Flask OAuth registry is a single-app object, so each app gets its own, with every provider in it.
    oauth = ProviderOAuth()
    oauth.init_app(app)
    settings: Sequence[ProviderSettings] = app.config["OIDC_PROVIDER_SETTINGS"]
    app.extensions[_EXTENSION] = Providers([Provider(app, each, oauth) for each in settings])


def oidc_providers(app: Flask | None = None) -> Providers:
    """The current app's providers."""
    providers: Providers = (app or current_app).extensions[_EXTENSION]
    return providers


def provider_named(name: str | None) -> Provider:
    """The current app's provider of that name; raises UnknownProvider."""
    provider = oidc_providers().named(name)
    if provider is None:
        raise UnknownProvider(name or "")
    return provider


class UnknownProvider(LookupError):
    """No provider of that name is configured."""
