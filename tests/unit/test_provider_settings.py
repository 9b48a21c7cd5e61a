"""provider_settings.py: one provider (OIDC_ISSUER, …) or several (OIDC_PROVIDERS), never both, each checked."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, load_settings
from provider_settings import SINGLE_PROVIDER, ProviderSettings
from tests.support.environments import base_environ, several


def providers(environ: dict[str, str]) -> tuple[ProviderSettings, ...]:
    found: tuple[ProviderSettings, ...] = load_settings(environ)["OIDC_PROVIDER_SETTINGS"]
    return found


def problems(environ: dict[str, str], **overrides: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ, overrides)
    return "\n".join(raised.value.problems)


def test_without_oidc_providers_the_one_provider_form_is_one_provider_as_before() -> None:
    [only] = providers(base_environ(OIDC_SCOPES="openid email", LOGOUT_HINT="client_id"))
    assert (only.name, only.issuer, only.client_id, only.single) == (
        SINGLE_PROVIDER,
        "https://idp.example.test",
        "client",
        True,
    )
    assert (only.scopes, only.logout_hint) == ("openid email", "client_id")
    assert only.discovery_url == "https://idp.example.test/.well-known/openid-configuration"


def test_each_named_provider_has_its_settings_and_defaults() -> None:
    corp, partner = providers(several(OIDC_PARTNER_IDP_LABEL="Partner", OIDC_CORP_LOGOUT_HINT="client_id"))
    assert (corp.name, corp.label, corp.logout_hint, corp.single) == ("corp", "Corp", "client_id", False)
    assert (partner.name, partner.label, partner.logout_hint) == ("partner-idp", "Partner", "id_token")
    # The issuer is kept exactly (Auth0's ends with "/"), the discovery URL has no double slash.
    assert partner.issuer == "https://partner.example.test/"
    assert partner.discovery_url == "https://partner.example.test/.well-known/openid-configuration"
    assert corp.scopes == partner.scopes == "openid email profile"


def test_both_forms_at_once_are_refused() -> None:
    found = problems(several(OIDC_ISSUER="https://idp.example.test"))
    assert "set either OIDC_PROVIDERS" in found and "not both" in found


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"OIDC_PROVIDERS": "corp,Partner"}, "'Partner' is not a provider name"),
        ({"OIDC_PROVIDERS": "corp,corp"}, "names a provider twice"),
        ({"OIDC_PROVIDERS": "corp,-x"}, "'-x' is not a provider name"),
        ({"OIDC_PROVIDERS": "corp,"}, "'' is not a provider name"),
        ({"OIDC_CORP_CLIENT_SECRET": ""}, "OIDC_CORP_CLIENT_SECRET is required"),
        ({"OIDC_PARTNER_IDP_ISSUER": ""}, "OIDC_PARTNER_IDP_ISSUER is required"),
        ({"OIDC_CORP_ISSUER": "corp.example.test"}, "OIDC_CORP_ISSUER must be an absolute http(s) URL"),
        ({"OIDC_PARTNER_IDP_ISSUER": "https://corp.example.test"}, "have the same issuer"),
        ({"OIDC_CORP_LOGOUT_HINT": "session"}, "OIDC_CORP_LOGOUT_HINT must be one of id_token, client_id"),
        ({"OIDC_CORP_TENANTS": "abc"}, "OIDC_CORP_TENANTS is only for an issuer template"),
        ({"OIDC_CORP_ISSUER": "https://{tenantid}.example.test/"}, "may hold {tenantid} once, in its path"),
        ({"OIDC_CORP_DISCOVERY_URL": "file:///etc/passwd"}, "OIDC_CORP_DISCOVERY_URL must be an absolute http(s) URL"),
        ({"OIDC_CORP_TRUST_EMAIL": "maybe"}, "OIDC_CORP_TRUST_EMAIL must be true or false (got 'maybe')"),
        (
            {"OIDC_CORP_ISSUER": "https://login.example.test/{tenantid}/v2.0", "OIDC_CORP_TRUST_EMAIL": "true"},
            "OIDC_CORP_TRUST_EMAIL cannot be set for an issuer template",
        ),
    ],
)
def test_a_bad_provider_setting_is_named(changes: dict[str, str], message: str) -> None:
    assert message in problems(several(**changes))


def test_production_wants_https_issuers() -> None:
    found = problems(several(GATEHOUSE_ENV="production", OIDC_CORP_ISSUER="http://corp.example.test"))
    assert "OIDC_CORP_ISSUER must be an https URL in production" in found


def test_an_entra_style_template_finds_discovery_at_the_common_tenant_and_takes_an_allow_list() -> None:
    corp, _partner = providers(
        several(
            OIDC_CORP_ISSUER="https://login.microsoftonline.com/{tenantid}/v2.0",
            OIDC_CORP_TENANTS="0f3b1a8e-0000-4000-8000-00000000000a, contoso",
        )
    )
    assert corp.is_template
    assert corp.discovery_url == "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
    assert corp.tenants == {"0f3b1a8e-0000-4000-8000-00000000000a", "contoso"}


def test_the_one_provider_form_still_names_what_is_missing() -> None:
    found = problems(base_environ(OIDC_ISSUER="", OIDC_CLIENT_SECRET=""))
    assert "OIDC_ISSUER is required" in found and "OIDC_CLIENT_SECRET is required" in found


@pytest.mark.parametrize(
    ("written", "trusted"), [("", False), ("false", False), ("TRUE", True), ("1", True), ("no", False)]
)
def test_trust_email_is_off_unless_set_per_provider(written: str, trusted: bool) -> None:
    corp, partner = providers(several(OIDC_CORP_TRUST_EMAIL=written))
    assert (corp.trust_email, partner.trust_email) == (trusted, False)
