"""Starting a sign-in (or a re-authentication): the provider's authorization URL, with its secrets kept."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from oidc.provider import Provider, ProviderError
from signin.failures import LoginFailed
from signin.login_state import store_login_state
from web import external_url

# OpenID Connect Core 5.5: ask for `auth_time` as an essential ID token claim, so that a fresh sign-in
# records when the user authenticated and a sensitive action soon after needs no trip to the provider
# (some providers, oidc-provider among them, send `auth_time` only when asked).
AUTH_TIME_REQUEST = {"auth_time": {"essential": True}}


def callback_url(provider: Provider) -> str:
    """The provider's redirect URI: /auth/callback for the one provider of OIDC_ISSUER, else /auth/callback/<name>."""
    if provider.settings.single:
        return external_url("auth.callback")
    return external_url("auth.provider_callback", name=provider.name)


def authorization_url(provider: Provider, next_path: str) -> str:
    """Start a sign-in with `provider`: remember state, nonce and PKCE verifier, return its authorization URL."""
    return _start_authorization(provider, {"next": next_path})


def reauthentication_url(provider: Provider, resume_path: str, user: str, max_age: int, prompt_login: bool) -> str:
    """Start a re-authentication of the signed-in `user`: the provider must authenticate them within `max_age` s.

    `resume_path` is where the callback sends them once it is done; it is kept with the state, server side.
    """
    reauthentication = {"user": user, "max_age": max_age}
    params = {"max_age": str(max_age), **({"prompt": "login"} if prompt_login else {})}
    return _start_authorization(provider, {"next": resume_path, "reauthentication": reauthentication}, params)


def linking_url(provider: Provider, resume_path: str, user: str) -> str:
    """Start a sign-in at `provider` whose identity is to be linked into the signed-in `user`'s account.

    The provider is asked to show its sign-in form (`prompt=login`): the identity linked is the one the
    person authenticates as now, not a session someone left open there.
    """
    return _start_authorization(provider, {"next": resume_path, "link": {"user": user}}, {"prompt": "login"})


def _start_authorization(provider: Provider, kept: dict[str, Any], params: Mapping[str, str] | None = None) -> str:
    """Remember a new state with its provider, nonce, PKCE verifier and `kept`; return the authorization URL.

    The state names its provider: only that provider's callback accepts the answer (mix-up defence).
    """
    redirect_uri = callback_url(provider)
    try:
        metadata = provider.metadata()
        # Our own secrets, from the `secrets` module: Authlib's generate_token draws each character through
        # SystemRandom.choice, ~50 µs a token, three tokens a sign-in. Same alphabet class as RFC 7636 asks
        # for the verifier (unreserved characters), 256 to 384 bits each.
        authorization = provider.client.create_authorization_url(
            redirect_uri,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            **with_auth_time_request(metadata, params or {}),
        )
    except ProviderError as error:
        raise LoginFailed("unavailable", str(error)) from error
    store_login_state(
        authorization["state"],
        {
            "provider": provider.name,
            "redirect_uri": redirect_uri,
            "code_verifier": authorization["code_verifier"],
            "nonce": authorization["nonce"],
            **kept,
        },
    )
    url: str = authorization["url"]
    return url


def with_auth_time_request(metadata: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """`params` with `auth_time` added to its `claims` request (JSON), if the provider supports the parameter.

    Only a discovery document saying `claims_parameter_supported: true` (the JSON boolean) gets one: the
    default is false, and a provider that does not know the parameter may refuse the whole request.
    """
    if metadata.get("claims_parameter_supported") is not True:
        return dict(params)
    requested: dict[str, Any] = json.loads(params["claims"]) if "claims" in params else {}
    requested["id_token"] = {**requested.get("id_token", {}), **AUTH_TIME_REQUEST}
    return {**params, "claims": json.dumps(requested, separators=(",", ":"))}
