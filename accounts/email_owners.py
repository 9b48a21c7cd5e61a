"""Which account owns a verified e-mail address: the lookup behind OIDC_<NAME>_TRUST_EMAIL (signin/email_linking.py).

Only an account's own address counts (its users row's `email`, from the identity that created it), only
when the provider that created it said it verified that address, and only when that provider is trusted
for e-mail now. An address an untrusted provider vouched for never matches: whoever controls a weaker
provider could otherwise make an account with someone's address first and collect their later sign-ins.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from extensions import db
from models.user import User


def verified_email_owners(email: str, trusted_issuers: Sequence[str]) -> list[User]:
    """The accounts (two at most: one is the answer, two mean "do not guess") whose own verified address is `email`.

    The address must match exactly as stored. The rows are detached, their columns loaded. Raises
    SQLAlchemyError when the database cannot be read.
    """
    if not trusted_issuers:
        return []
    try:
        return list(
            db.session.execute(
                select(User)
                .where(User.email == email, User.email_verified.is_(True), User.issuer.in_(trusted_issuers))
                .order_by(User.id)
                .limit(2)
            ).scalars()
        )
    finally:
        db.session.remove()
