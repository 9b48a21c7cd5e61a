"""Deleting an account's row (users/deletion.py): idempotent, and never undoing a newer sign-in."""

from __future__ import annotations

import logging

from extensions import db
from sessions import keys
from users.deletion import bury

log = logging.getLogger(__name__)


def delete_user_row(issuer: str, subject: str, version: int) -> None:
    """Delete the user's row and keep their tombstone; a row a newer sign-in wrote stays."""
    try:
        bury(issuer, subject, int(version))
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("delete_user_row failed for user %s", keys.user_tag(issuer, subject))
        raise
    finally:
        db.session.remove()
