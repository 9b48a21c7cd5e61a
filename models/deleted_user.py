"""A deleted account's tombstone: no job older than the deletion may bring the user back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.user import utcnow
from users import schema


class DeletedUser(Model):
    """A user who deleted their account; `deleted_version` is above every version their data had."""

    __tablename__ = "deleted_users"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_deleted_users_issuer_subject"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(schema.ISSUER_MAX))
    subject: Mapped[str] = mapped_column(String(schema.SUBJECT_MAX))
    # From Redis's clock, like the users' versions (sessions/lua/delete_user.lua).
    deleted_version: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
