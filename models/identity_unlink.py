"""An unlinked identity's tombstone: no link job asked for before the unlink may put the link back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from users import schema


class IdentityUnlink(Model):
    """The last time the identity (issuer, subject) was unlinked from the account whose primary identity
    is (user_issuer, user_subject).

    The link and unlink jobs run in any order (RQ retries a link whose account has no row yet), so
    each carries the time it was asked for: a link asked for before this time never stores its row,
    and an unlink never removes a link asked for after it.
    """

    __tablename__ = "identity_unlinks"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", "user_issuer", "user_subject", name="uq_identity_unlinks_identity_user"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(schema.ISSUER_MAX))
    subject: Mapped[str] = mapped_column(String(schema.SUBJECT_MAX))
    # The account by its primary identity, as the jobs name it: it may have no users row yet.
    user_issuer: Mapped[str] = mapped_column(String(schema.ISSUER_MAX))
    user_subject: Mapped[str] = mapped_column(String(schema.SUBJECT_MAX))
    # The web's clock, as the link's linked_at is (sessions/identity_links.py new_link).
    unlinked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
