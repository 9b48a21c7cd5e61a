"""The sign-ins an account accepts: its primary identity (the one that created it) and the ones linked to it.

Each (issuer, subject) belongs to at most one account. A user row's own (issuer, subject) is its
primary identity, and it has a row here too (written with the user's row, accounts/identities.py);
identities linked from other providers (at most one per provider, checked when the link is made)
are the other rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.user import utcnow
from users import schema

# A configured provider's name (provider_settings.PROVIDER_NAME allows 32 characters at most).
PROVIDER_MAX = 32


class UserIdentity(Model):
    """One (issuer, subject) a user signs in with, and the provider it was linked through."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_user_identities_issuer_subject"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The configured provider's name when the identity was stored ("unknown" if no provider issued it).
    provider: Mapped[str] = mapped_column(String(PROVIDER_MAX))
    issuer: Mapped[str] = mapped_column(String(schema.ISSUER_MAX))
    subject: Mapped[str] = mapped_column(String(schema.SUBJECT_MAX))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The last sign-in that used this identity, as its persistence job saw it; never moves backwards.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def to_dict(self) -> dict[str, str]:
        """Plain data for `users list --json`."""
        return {"provider": self.provider, "issuer": self.issuer, "subject": self.subject}
