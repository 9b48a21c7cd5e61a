"""A first sign-in joining the account whose verified e-mail address it shares: only where the settings say so.

Off by default. Linking by address hands an account to whoever controls that address at the provider
that vouches for it, so Gatehouse does it only when every one of these holds:
- the provider signed in with is trusted for e-mail (OIDC_<NAME>_TRUST_EMAIL; never an issuer template,
  whose every tenant vouches for its own users: Entra's `email` claim is not even verified);
- that provider said `email_verified: true` of the address;
- the identity has no account: none of its own in Redis or SQL, and no link;
- exactly one account's own address is that one, verified by the provider that created the account, which
  is trusted for e-mail too (accounts/email_owners.py); two such accounts are not guessed between.
Then the identity is linked into that account, as a link made at /account/identities is (the link in Redis,
the `link_identity` job), the audit trail records it (identity_linked, "email"), and the sign-in opens it.
Otherwise the sign-in goes on as without the setting. When the database cannot say whose the address is,
the sign-in is refused (try again): an account made then could never be merged into the right one.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from accounts.email_owners import verified_email_owners
from accounts.identities import identity_owner, provider_name
from accounts.relinking import restore_into
from audit import events as audit
from models.user import User
from oidc.provider import oidc_providers
from sessions.identity_links import AccountGone, IdentityTaken, ProviderAlreadyLinked, add_link, new_link
from sessions.user_state import read_user_state
from signin.failures import LoginFailed
from signin.linking import queue_link
from users.schema import Identity
from users.tags import user_tag

log = logging.getLogger(__name__)


def link_by_verified_email(provider: str, identity: Identity) -> bool:
    """Link a first sign-in's identity into the one account owning its address; True if it was linked.

    The caller has checked that the provider verified `identity.email` (signin/session.py `email_verified`).

    Raises LoginFailed("email_link_unavailable") when the database does not answer, and LoginFailed("disabled")
    when the account owning the address is disabled.
    """
    owner = _sole_owner(provider, identity)
    if owner is None:
        return False
    account = user_tag(owner.issuer, owner.subject)
    link = new_link(provider, identity.issuer, identity.subject)
    try:
        add_link(account, provider_name(owner.issuer), link)
    except AccountGone:
        # The account's state expired from Redis (nobody signed in for a while): back from its row.
        if restore_into(owner, link) != "linked":
            return False
    except (IdentityTaken, ProviderAlreadyLinked):
        # Taken meanwhile (its own first sign-in, or another link), or the account has an identity at that provider.
        return False
    queue_link((owner.issuer, owner.subject), link)
    audit.record("identity_linked", "email", issuer=owner.issuer, subject=owner.subject, detail=provider)
    log.info("a first sign-in at %s was linked into user %s by its verified address", provider, account)
    return True


def _sole_owner(provider: str, identity: Identity) -> User | None:
    """The one account this sign-in may join by its verified address, or None (the module's rules)."""
    providers = oidc_providers()
    settings = providers.named(provider)
    if settings is None or not settings.settings.trust_email or not identity.email:
        return None
    if read_user_state(user_tag(identity.issuer, identity.subject)).identity is not None:
        return None  # the identity has an account of its own
    try:
        if identity_owner(identity.issuer, identity.subject) is not None:
            return None  # its own account or a link, known to the database only (the session store lost it)
        owners = verified_email_owners(identity.email, providers.trusted_for_email)
    except SQLAlchemyError as error:
        raise LoginFailed("email_link_unavailable", "the database cannot say whose the verified address is") from error
    if len(owners) != 1:
        if owners:
            log.warning("two accounts share a verified address; a first sign-in at %s makes a new one", provider)
        return None
    if owners[0].disabled:
        raise LoginFailed("disabled", "the account owning the verified address is disabled")
    return owners[0]
