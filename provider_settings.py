"""The OpenID providers people sign in with, read from the settings and checked (nothing is fetched here).

Two forms, never both:
- one provider: OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET (today's form; its callback is
  /auth/callback and its name is "oidc");
- several: OIDC_PROVIDERS=corp,partner and, for each NAME (upper-cased, dashes as underscores),
  OIDC_<NAME>_ISSUER, OIDC_<NAME>_CLIENT_ID, OIDC_<NAME>_CLIENT_SECRET, OIDC_<NAME>_LABEL and the
  optional OIDC_<NAME>_SCOPES, OIDC_<NAME>_LOGOUT_HINT, OIDC_<NAME>_TENANTS,
  OIDC_<NAME>_DISCOVERY_URL and OIDC_<NAME>_TRUST_EMAIL; each has its callback /auth/callback/<name>.

OIDC_<NAME>_TRUST_EMAIL (off by default) lets a first sign-in at that provider join the account whose
address it verified (signin/email_linking.py); it cannot be set for an issuer template, whose tenants
each say what they like about an address.

An issuer may be a template holding `{tenantid}` (Microsoft Entra's multi-tenant issuer): an
ID token's `iss` must then equal the template filled with the token's own `tid`, and
OIDC_<NAME>_TENANTS may list the tenants allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The name of the one provider of the OIDC_ISSUER form.
SINGLE_PROVIDER = "oidc"
PROVIDER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\Z")
TENANT_PLACEHOLDER = "{tenantid}"
# What a tenant id may look like (Entra's are GUIDs); anything else in `tid` is refused.
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}\Z")
LOGOUT_HINTS = ("id_token", "client_id")
# How a yes/no setting may be written (any case); empty is no.
YES, NO = frozenset({"true", "yes", "on", "1"}), frozenset({"false", "no", "off", "0", ""})
SINGLE_FORM = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")


@dataclass(frozen=True)
class ProviderSettings:
    """One provider as configured."""

    name: str
    label: str
    issuer: str  # exact, or a template holding {tenantid}
    client_id: str
    client_secret: str
    scopes: str
    logout_hint: str
    tenants: frozenset[str]
    discovery_url: str
    # The OIDC_ISSUER form: its callback is /auth/callback.
    single: bool = False
    # OIDC_<NAME>_TRUST_EMAIL: its verified addresses may link a first sign-in to an account (signin/email_linking.py).
    trust_email: bool = False

    @property
    def is_template(self) -> bool:
        """True for an issuer that names its tenant per token (`{tenantid}`)."""
        return TENANT_PLACEHOLDER in self.issuer


def setting_prefix(name: str) -> str:
    """OIDC_<NAME>_ for a provider name."""
    return f"OIDC_{name.upper().replace('-', '_')}_"


def read_providers(settings: Mapping[str, Any]) -> tuple[tuple[ProviderSettings, ...], list[str]]:
    """The configured providers, and every problem with them (the providers are empty when there are problems)."""
    listed = str(settings.get("OIDC_PROVIDERS") or "").strip()
    if not listed:
        return _single_provider(settings)
    problems = []
    if any(settings.get(name) for name in SINGLE_FORM):
        problems.append(
            "set either OIDC_PROVIDERS (with OIDC_<NAME>_ISSUER, _CLIENT_ID and _CLIENT_SECRET for each) "
            "or OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET, not both"
        )
    names = [name.strip() for name in listed.split(",")]
    for name in names:
        if not PROVIDER_NAME.match(name):
            problems.append(
                f"OIDC_PROVIDERS: {name!r} is not a provider name (lowercase letters, digits and dashes, at most 32)"
            )
    if len(set(names)) != len(names):
        problems.append("OIDC_PROVIDERS names a provider twice")
    if problems:
        return (), problems
    providers = []
    for name in names:
        provider, found = _named_provider(settings, name)
        providers.append(provider)
        problems += found
    problems += _shared_issuer_problems(providers)
    return (tuple(providers) if not problems else ()), problems


def _single_provider(settings: Mapping[str, Any]) -> tuple[tuple[ProviderSettings, ...], list[str]]:
    problems = [f"{name} is required (or OIDC_PROVIDERS)" for name in SINGLE_FORM if not settings.get(name)]
    issuer = str(settings.get("OIDC_ISSUER") or "")
    problems += _issuer_problems("OIDC_ISSUER", issuer, settings)
    if problems:
        return (), problems
    provider = ProviderSettings(
        name=SINGLE_PROVIDER,
        label=str(settings.get("OIDC_LABEL") or "your identity provider"),
        issuer=issuer,
        client_id=str(settings["OIDC_CLIENT_ID"]),
        client_secret=str(settings["OIDC_CLIENT_SECRET"]),
        scopes=str(settings.get("OIDC_SCOPES") or "openid email profile"),
        logout_hint=str(settings.get("LOGOUT_HINT") or "id_token"),
        tenants=frozenset(),
        discovery_url=_discovery_url(issuer, ""),
        single=True,
    )
    return (provider,), []


def _named_provider(settings: Mapping[str, Any], name: str) -> tuple[ProviderSettings, list[str]]:
    """One provider of the OIDC_PROVIDERS form, and the problems with its settings."""
    prefix = setting_prefix(name)

    def value(suffix: str, default: str = "") -> str:
        return str(settings.get(prefix + suffix) or default).strip()

    problems = [
        f"{prefix}{suffix} is required" for suffix in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET") if not value(suffix)
    ]
    issuer = value("ISSUER")
    problems += _issuer_problems(prefix + "ISSUER", issuer, settings)
    logout_hint = value("LOGOUT_HINT", str(settings.get("LOGOUT_HINT") or "id_token"))
    if logout_hint not in LOGOUT_HINTS:
        problems.append(f"{prefix}LOGOUT_HINT must be one of {', '.join(LOGOUT_HINTS)} (got {logout_hint!r})")
    tenants = frozenset(tenant.strip() for tenant in value("TENANTS").split(",") if tenant.strip())
    if tenants and TENANT_PLACEHOLDER not in issuer:
        problems.append(f"{prefix}TENANTS is only for an issuer template holding {TENANT_PLACEHOLDER}")
    problems += [
        f"{prefix}TENANTS: {tenant!r} is not a tenant id" for tenant in sorted(tenants) if not TENANT_ID.match(tenant)
    ]
    discovery = value("DISCOVERY_URL")
    if discovery and not _is_http_url(discovery):
        problems.append(f"{prefix}DISCOVERY_URL must be an absolute http(s) URL")
    trust_email = value("TRUST_EMAIL").lower()
    if trust_email not in YES | NO:
        problems.append(f"{prefix}TRUST_EMAIL must be true or false (got {trust_email!r})")
    elif trust_email in YES and TENANT_PLACEHOLDER in issuer:
        # Any tenant of a multi-tenant issuer sets its users' addresses (Entra's `email` is not even verified).
        problems.append(f"{prefix}TRUST_EMAIL cannot be set for an issuer template: each tenant vouches for its own")
    provider = ProviderSettings(
        name=name,
        label=value("LABEL", name.replace("-", " ").title()),
        issuer=issuer,
        client_id=value("CLIENT_ID"),
        client_secret=value("CLIENT_SECRET"),
        scopes=value("SCOPES", str(settings.get("OIDC_SCOPES") or "openid email profile")),
        logout_hint=logout_hint,
        tenants=tenants,
        discovery_url=_discovery_url(issuer, discovery),
        trust_email=trust_email in YES,
    )
    return provider, problems


def _issuer_problems(name: str, issuer: str, settings: Mapping[str, Any]) -> list[str]:
    if not issuer:
        return []
    if not _is_http_url(issuer.replace(TENANT_PLACEHOLDER, "tenant")):
        return [f"{name} must be an absolute http(s) URL"]
    if settings.get("GATEHOUSE_ENV") == "production" and urlsplit(issuer).scheme != "https":
        # Codes and tokens would travel in clear.
        return [f"{name} must be an https URL in production"]
    if issuer.count(TENANT_PLACEHOLDER) > 1 or TENANT_PLACEHOLDER in urlsplit(issuer).netloc:
        return [f"{name} may hold {TENANT_PLACEHOLDER} once, in its path"]
    return []


def _shared_issuer_problems(providers: list[ProviderSettings]) -> list[str]:
    """Two providers with one issuer: a token's `iss` must name exactly one of them."""
    seen: dict[str, str] = {}
    problems = []
    for provider in providers:
        if provider.issuer in seen:
            problems.append(f"providers {seen[provider.issuer]} and {provider.name} have the same issuer")
        seen.setdefault(provider.issuer, provider.name)
    return problems


def _discovery_url(issuer: str, configured: str) -> str:
    """Where the provider's discovery document is: as configured, or under its issuer.

    For an issuer template, Entra's convention: the "common" tenant's document (whose `issuer` is the template).
    """
    if configured:
        return configured
    base = issuer.replace(TENANT_PLACEHOLDER, "common").rstrip("/")
    return f"{base}/.well-known/openid-configuration"


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
