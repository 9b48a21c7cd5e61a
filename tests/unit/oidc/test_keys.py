"""oidc/keys.py: JwksCache fetches lazily, follows key rotation and refetches at most once per interval."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, RSAKey

from oidc.keys import JwksCache
from tests.unit.oidc.fakes import CountingJwks, FakeClock

INTERVAL = 30.0


def test_nothing_is_fetched_until_a_key_is_needed(jwks: CountingJwks) -> None:
    cache = JwksCache(jwks, min_refetch_interval=INTERVAL)
    assert jwks.fetches == 0
    assert [key.kid for key in cache.candidates("provider-key-1", "RS256")] == ["provider-key-1"]
    assert [key.kid for key in cache.candidates("provider-key-1", "RS256")] == ["provider-key-1"]
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_once_and_finds_a_rotated_key(
    jwks: CountingJwks, clock: FakeClock, second_key: RSAKey
) -> None:
    cache = JwksCache(jwks, min_refetch_interval=INTERVAL)
    cache.candidates("provider-key-1", "RS256")
    jwks.keys.append(second_key)  # the provider rotates in a new key
    clock.advance(INTERVAL + 1)
    assert [key.kid for key in cache.candidates("provider-key-2", "RS256")] == ["provider-key-2"]
    assert jwks.fetches == 2


def test_a_stream_of_unknown_kids_refetches_at_most_once_per_interval(jwks: CountingJwks, clock: FakeClock) -> None:
    cache = JwksCache(jwks, min_refetch_interval=INTERVAL)
    cache.candidates("provider-key-1", "RS256")
    clock.advance(INTERVAL + 1)
    for attempt in range(50):
        assert cache.candidates(f"made-up-{attempt}", "RS256") == []
        clock.advance(0.1)
    assert jwks.fetches == 2  # the first load plus one refetch

    clock.advance(INTERVAL)
    for attempt in range(50):
        assert cache.candidates(f"made-up-again-{attempt}", "RS256") == []
    assert jwks.fetches == 3


def test_an_unknown_kid_right_after_a_fetch_refetches_once(
    jwks: CountingJwks, clock: FakeClock, second_key: RSAKey
) -> None:
    # A rotation seen just after the first load must work; the next unknown kid waits for the interval.
    cache = JwksCache(jwks, min_refetch_interval=INTERVAL)
    cache.candidates("provider-key-1", "RS256")
    jwks.keys.append(second_key)
    assert [key.kid for key in cache.candidates("provider-key-2", "RS256")] == ["provider-key-2"]
    assert cache.candidates("made-up", "RS256") == []
    assert jwks.fetches == 2


def test_a_missing_kid_never_refetches(jwks: CountingJwks, clock: FakeClock) -> None:
    cache = JwksCache(jwks, min_refetch_interval=INTERVAL)
    cache.candidates(None, "RS256")
    clock.advance(INTERVAL + 1)
    assert cache.candidates(None, "ES256") == []
    assert jwks.fetches == 1


def test_keys_are_matched_by_type_use_and_alg(signing_key: RSAKey, ec_key: ECKey) -> None:
    encryption_key = RSAKey.import_key({**signing_key.as_dict(private=False), "kid": "enc-1", "use": "enc"})
    cache = JwksCache(CountingJwks([signing_key, ec_key, encryption_key]))
    assert [key.kid for key in cache.candidates(None, "RS256")] == ["provider-key-1"]
    assert [key.kid for key in cache.candidates(None, "ES256")] == ["provider-ec-1"]
    # provider-key-1 says alg RS256, so it is no candidate for RS512.
    assert cache.candidates(None, "RS512") == []
    assert cache.candidates("enc-1", "RS256") == []


class FailingJwks:
    """A JWKS endpoint that answers once, then fails until told otherwise."""

    def __init__(self, jwks: CountingJwks):
        self.jwks = jwks
        self.failing = False
        self.attempts = 0

    def __call__(self) -> dict:
        """One fetch: the key set, or the provider's outage."""
        self.attempts += 1
        if self.failing:
            raise RuntimeError("the provider is down")
        return self.jwks()


def test_a_failed_reload_keeps_the_last_good_keys(jwks: CountingJwks) -> None:
    """When the hourly reload fails, sign-ins keep working on the keys already known; retries are spaced."""
    clock = FakeClock()
    source = FailingJwks(jwks)
    cache = JwksCache(source, min_refetch_interval=INTERVAL, max_age=3600, clock=clock.monotonic)
    assert [key.kid for key in cache.candidates("provider-key-1", "RS256")] == ["provider-key-1"]
    source.failing = True
    clock.advance(3601)
    for _ in range(20):
        assert [key.kid for key in cache.candidates("provider-key-1", "RS256")] == ["provider-key-1"]
        clock.advance(0.5)
    assert source.attempts == 2  # one failed reload, not one per token
    clock.advance(INTERVAL)
    source.failing = False
    assert [key.kid for key in cache.candidates("provider-key-1", "RS256")] == ["provider-key-1"]
    assert source.attempts == 3


def test_a_first_load_that_fails_is_an_error(jwks: CountingJwks) -> None:
    """With no good keys yet there is nothing to fall back on: the failure is reported."""
    source = FailingJwks(jwks)
    source.failing = True
    cache = JwksCache(source, min_refetch_interval=INTERVAL)
    with pytest.raises(RuntimeError):
        cache.candidates("provider-key-1", "RS256")
