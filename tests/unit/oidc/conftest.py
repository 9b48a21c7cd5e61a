"""Fixtures for the OIDC tests: more signing keys, a counting JWKS, a fake clock."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, RSAKey

import oidc.keys
from tests.unit.oidc.fakes import CountingJwks, FakeClock


@pytest.fixture(scope="session")
def second_key() -> RSAKey:
    """Another RSA key of the provider (for rotation and several-keys cases)."""
    return RSAKey.generate_key(2048, parameters={"kid": "provider-key-2", "use": "sig"})


@pytest.fixture(scope="session")
def stranger_key() -> RSAKey:
    """An RSA key the provider never published (an attacker's)."""
    return RSAKey.generate_key(2048, parameters={"kid": "stranger"})


@pytest.fixture(scope="session")
def ec_key() -> ECKey:
    """An EC P-256 key, for algorithms the provider may not advertise."""
    return ECKey.generate_key("P-256", parameters={"kid": "provider-ec-1", "use": "sig"})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake monotonic clock for the key cache (only oidc.keys sees it)."""
    fake = FakeClock()
    monkeypatch.setattr(oidc.keys, "time", fake)
    return fake


@pytest.fixture
def jwks(signing_key: RSAKey) -> CountingJwks:
    """The provider's key set: the signing key alone."""
    return CountingJwks([signing_key])
