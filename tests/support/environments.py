"""Complete settings for tests that load the configuration, in-process or in a `flask` child process."""

from __future__ import annotations

# The single-provider form switched off, for the several-provider form (OIDC_PROVIDERS).
SINGLE_FORM = {"OIDC_ISSUER": "", "OIDC_CLIENT_ID": "", "OIDC_CLIENT_SECRET": ""}


def base_environ(**changes: str) -> dict[str, str]:
    """A complete development environment, with `changes` applied."""
    environ = {
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": "x" * 40,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "OIDC_ISSUER": "https://idp.example.test",
        "OIDC_CLIENT_ID": "client",
        "OIDC_CLIENT_SECRET": "secret",
    }
    environ.update(changes)
    return environ


def production_environ(**changes: str) -> dict[str, str]:
    """A complete production environment, with `changes` applied."""
    production = {
        "GATEHOUSE_ENV": "production",
        "DATABASE_URL": "postgresql://db.internal/gatehouse",
        "PUBLIC_URL": "https://gatehouse.example.test",
    }
    return base_environ(**{**production, **changes})


def several(**changes: str) -> dict[str, str]:
    """A development environment with providers corp and partner-idp."""
    return base_environ(
        **{
            **SINGLE_FORM,
            "OIDC_PROVIDERS": "corp,partner-idp",
            "OIDC_CORP_ISSUER": "https://corp.example.test",
            "OIDC_CORP_CLIENT_ID": "corp-client",
            "OIDC_CORP_CLIENT_SECRET": "corp-secret",
            "OIDC_PARTNER_IDP_ISSUER": "https://partner.example.test/",
            "OIDC_PARTNER_IDP_CLIENT_ID": "partner-client",
            "OIDC_PARTNER_IDP_CLIENT_SECRET": "partner-secret",
            **changes,
        }
    )


# What `flask db upgrade` needs, in the testing environment; its Redis is never contacted.
MIGRATION_SETTINGS = base_environ(GATEHOUSE_ENV="testing", REDIS_URL="redis://127.0.0.1:1/0")
