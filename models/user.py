"""A user, keyed by the provider that vouches for them (issuer) and their id there (subject)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from users import schema


def utcnow() -> datetime:
    """The current time, timezone-aware (a callable default, evaluated per row)."""
    return datetime.now(UTC)


def as_utc_iso(moment: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset; SQLite hands back the stored UTC times without one."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class User(Model):
    """One signed-in person: identity claims from the provider plus their own profile."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),
        # A first sign-in at a provider trusted for e-mail looks its verified address up (signin/email_linking.py).
        Index("ix_users_email", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(schema.ISSUER_MAX))
    subject: Mapped[str] = mapped_column(String(schema.SUBJECT_MAX))

    # Identity claims, refreshed at every sign-in.
    email: Mapped[str | None] = mapped_column(String(schema.EMAIL_MAX))
    name: Mapped[str | None] = mapped_column(String(schema.NAME_MAX))
    picture: Mapped[str | None] = mapped_column(String(schema.PICTURE_MAX))
    # True when the provider said it verified `email` (NULL: it did not say so, or a row older than the column).
    email_verified: Mapped[bool | None] = mapped_column(Boolean)
    # Sign-in time in ms: a late sign-in job never overwrites newer claims.
    identity_version: Mapped[int] = mapped_column(BigInteger, default=0)

    # Profile fields, edited by the user.
    display_name: Mapped[str] = mapped_column(String(schema.DISPLAY_NAME_MAX))
    locale: Mapped[str] = mapped_column(String(schema.LOCALE_MAX))
    timezone: Mapped[str] = mapped_column(String(schema.TIMEZONE_MAX))
    website: Mapped[str | None] = mapped_column(String(schema.WEBSITE_MAX))
    bio: Mapped[str | None] = mapped_column(Text)
    # Edit time in ms: a late profile job never overwrites a newer edit.
    profile_version: Mapped[int] = mapped_column(BigInteger, default=0)

    # Set by `flask --app app users disable|enable`; the version orders those changes.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, object]:
        """Plain data for `users list --json`."""
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "email": self.email,
            "email_verified": bool(self.email_verified),
            "name": self.name,
            **{field: getattr(self, field) for field in schema.PROFILE_FIELDS},
            "profile_version": self.profile_version,
            "disabled": bool(self.disabled),
            "created_at": as_utc_iso(self.created_at),
            "updated_at": as_utc_iso(self.updated_at),
        }
