"""A token response, as Gatehouse keeps it beside the session."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def token_fields(token: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a token response Gatehouse keeps beside the session."""
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in") is not None:
        expires_at = time.time() + int(token["expires_in"])
    return {
        "access_token": token.get("access_token"),
        "refresh_token": token.get("refresh_token"),
        "expires_at": expires_at,
        "id_token": token.get("id_token"),
    }
