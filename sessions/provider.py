"""Which of the configured providers a session signed in with: the one its refreshes, sign-out and
re-authentication go to."""

from __future__ import annotations

from oidc.provider import Provider, UnknownProvider, oidc_providers
from sessions.store import StoredSession
from sessions.user import current_session


def session_provider(stored: StoredSession | None = None) -> Provider:
    """The provider of this (or the given) session; raises UnknownProvider when it is not configured any more.

    A session stored before sessions kept their provider's name was signed in through the one
    provider of those days: it is found by its user's issuer.
    """
    stored = stored or current_session()
    providers = oidc_providers()
    if stored.provider_name is not None:
        provider = providers.named(stored.provider_name)
    else:
        provider = providers.issuing(stored.identity.issuer if stored.identity else None)
    if provider is None:
        raise UnknownProvider(stored.provider_name or "")
    return provider
