"""Fixtures of the sign-in tests: a second provider, and an app that offers both (see two_providers.py)."""

from __future__ import annotations

import pytest
import responses
from flask import Flask
from joserfc.jwk import RSAKey

from tests.unit.conftest import AppFactory
from tests.unit.mock_provider import MockProvider
from tests.unit.signin.two_providers import partner_provider, several


@pytest.fixture(scope="session")
def partner_key() -> RSAKey:
    """The second provider's RSA signing key (generated once: key generation is the slow part)."""
    return RSAKey.generate_key(2048, parameters={"kid": "partner-key"})


@pytest.fixture
def partner(mocked_http: responses.RequestsMock, partner_key: RSAKey) -> MockProvider:
    """The second provider."""
    return partner_provider(mocked_http, partner_key)


@pytest.fixture
def two_provider_app(make_app: AppFactory, partner: MockProvider) -> Flask:
    """An app offering corp and partner."""
    return make_app(**several())
