"""Fakes for the key cache: a counting JWKS source and a hand-driven clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from joserfc.jwk import ECKey, RSAKey


class FakeClock:
    """Stands in for the `time` module inside oidc.keys; `advance` moves it on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        """The current (fake) monotonic time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


class CountingJwks:
    """A JWKS endpoint: serves the current public keys and counts how often it is fetched."""

    def __init__(self, keys: Sequence[RSAKey | ECKey]):
        self.keys = list(keys)
        self.fetches = 0

    def __call__(self) -> dict[str, Any]:
        """One fetch of the key set."""
        self.fetches += 1
        return {"keys": [key.as_dict(private=False) for key in self.keys]}
