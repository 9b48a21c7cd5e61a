"""The provider's signing keys, cached per process and refetched sparingly.

An ID token signed with a key we have not seen (`kid` unknown) triggers one
refetch of the key set, so key rotation just works, even right after a fetch.
Those unknown-`kid` refetches are spaced at least `min_refetch_interval` apart,
so a stream of made-up `kid`s cannot turn the app into a client that hammers the
provider. The set is also reloaded on first use after `max_age`, so a key the
provider withdrew stops being trusted. A failed fetch is not tried again for
`min_refetch_interval` either, whether or not keys were ever loaded: meanwhile the
same failure is raised at once, so junk posted while the provider's JWKS is down
cannot make every request hold the cache's lock for a whole fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

# Key types that can verify each family of asymmetric algorithms.
KEY_TYPE_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class KeySetError(Exception):
    """The provider's JWKS could not be read as a key set."""


class JwksCache:
    """The JWKS of one provider, fetched lazily."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any]],
        *,
        min_refetch_interval: float = 30.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] | None = None,
    ):
        self._fetch = fetch
        # Looked up per call, so tests may swap the clock in.
        self._clock = clock or (lambda: time.monotonic())
        self._min_refetch_interval = min_refetch_interval
        self._max_age = max_age
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        # Only refetches forced by an unknown `kid` are rate limited: the first one
        # after a load must be allowed, or a rotation just after a fetch would fail.
        self._forced_at = float("-inf")
        # The last failed fetch while no keys were loaded, and when it failed.
        self._failure: Exception | None = None
        self._failed_at = float("-inf")

    def _load(self, *, force: bool) -> KeySet:
        with self._lock:
            now = self._clock()
            keys = self._keys
            if keys is None and self._failure is not None and now - self._failed_at < self._min_refetch_interval:
                # The same kind of error the fetch raised (a new one: each caller gets its own traceback).
                raise type(self._failure)(*self._failure.args)
            if keys is None or now - self._fetched_at >= self._max_age:
                keys = self._reload(keys, now)
            elif force and now - self._forced_at >= self._min_refetch_interval:
                self._forced_at = now
                keys = self._reload(keys, now)
            return keys

    def _reload(self, current: KeySet | None, now: float) -> KeySet:
        """Fetch the key set again; if that fails, keep the last good keys and try again a little later."""
        try:
            return self._store(self._fetch(), now)
        except Exception as error:
            if current is None:
                self._failure, self._failed_at = error, now
                raise
            # The provider's keys rarely change: a failed reload (outage, a broken answer) must not
            # stop every sign-in. The next attempt comes after min_refetch_interval, not per token.
            log.warning("keeping the provider's last good signing keys: %s", type(error).__name__)
            self._fetched_at = now - self._max_age + self._min_refetch_interval
            return current

    def _store(self, jwks: Any, now: float) -> KeySet:
        try:
            keys = KeySet.import_key_set(jwks)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as error:
            # A malformed key set is the provider's fault: refuse the token, never crash.
            raise KeySetError(f"the provider's key set is unusable: {type(error).__name__}") from error
        self._keys, self._fetched_at = keys, now
        return keys

    def candidates(self, kid: str | None, alg: str) -> list[Any]:
        """The keys that may have signed a token with this `kid` and `alg`."""
        keys = self._matching(self._load(force=False), kid, alg)
        if not keys and kid is not None:
            keys = self._matching(self._load(force=True), kid, alg)
        return keys

    @staticmethod
    def _matching(key_set: KeySet, kid: str | None, alg: str) -> list[Any]:
        key_type = KEY_TYPE_FOR_ALG.get(alg[:2])
        found = []
        for key in key_set.keys:
            if key.key_type != key_type or key.get("use", "sig") != "sig":
                continue
            if kid is not None and key.kid != kid:
                continue
            if key.get("alg") not in (None, alg):
                continue
            found.append(key)
        return found
