"""The opaque id of a user: the same for all their sessions and every process, naming no one.

It is the user's Redis hash tag (sessions/keys.py), Flask-Login's `get_id()`, and the only way
logs and metrics name a user: without the user's issuer and subject it identifies nobody.
"""

from __future__ import annotations

import base64
import hashlib

USER_TAG_BYTES = 15


def user_tag(issuer: str, subject: str) -> str:
    """The opaque id of the user `subject` at `issuer`."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).digest()[:USER_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# The issuer of an account with no identity of its own: one whose creating identity was unlinked, so it moved
# to a new name (accounts/moves.py). No provider can issue it: a provider's issuer must be an http(s) URL
# (provider_settings.py).
MOVED_ACCOUNT_ISSUER = "urn:gatehouse:account"


def is_moved_account(issuer: str) -> bool:
    """True for the name of an account that moved to a new name (it has no identity of its own)."""
    return issuer == MOVED_ACCOUNT_ISSUER
