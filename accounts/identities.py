"""An account's identities in SQL: the primary one written with the user's row, linked ones by job, and lookups.

An account is keyed by its primary identity, the (issuer, subject) of the sign-in that created it
(its users row). It may accept more sign-ins: identities linked from other providers. Each
(issuer, subject) belongs to one account at most (`user_identities`' unique constraint), and a row
is never moved from one account to another.

- The persistence jobs give every user their primary identity row and record when a sign-in used
  an identity (`record_identities`, called by the users upsert in its transaction).
- `link_identity` and `unlink_identity` are the jobs the web queues when a user links or unlinks one.
- `identity_owner` and `account_identities` answer the web; they raise SQLAlchemyError when the
  database cannot be read.

Logs name users by their opaque id (users/tags.py) only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from accounts.job_records import as_aware, moment_field, text_field
from extensions import db
from jobs.failures import PERMANENT_FAILURES, give_up, job_transaction
from models.batch_queries import pairs_in
from models.deleted_user import DeletedUser
from models.identity_unlink import IdentityUnlink
from models.user import User
from models.user_identity import PROVIDER_MAX, UserIdentity
from oidc.provider import oidc_providers
from users.tags import is_moved_account, user_tag

log = logging.getLogger(__name__)

# The provider of an identity whose issuer no configured provider issues (a provider removed from the settings).
UNKNOWN_PROVIDER = "unknown"
# Users per query when listing identities for many users at once.
_CHUNK = 500


@dataclass(frozen=True)
class LinkedIdentity:
    """One identity an account signs in with, as the web shows it."""

    provider: str
    issuer: str
    subject: str
    linked_at: float  # Unix time
    last_used_at: float | None  # Unix time; None until a sign-in's persistence job records one
    primary: bool  # the identity that created the account (its users row's issuer and subject)


class AccountNotStoredYet(Exception):
    """The account's users row is not there yet (its first persistence job has not run): RQ retries the link."""


class AccountDeleted(Exception):
    """The account was deleted after the link was asked for: the link is dropped."""


class IdentityTaken(Exception):
    """The identity belongs to another account: it is never moved."""


class LinkUndone(Exception):
    """The identity was unlinked after the link was asked for: the link is dropped."""


class OwnIdentity(Exception):
    """An unlink named the account's primary identity, which stays with the account."""


def provider_name(issuer: str) -> str:
    """The name of the configured provider that issues `issuer`, or "unknown"."""
    provider = oidc_providers().issuing(issuer)
    return provider.name if provider is not None else UNKNOWN_PROVIDER


# The persistence jobs' part (current transaction).


def record_identities(records: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Give each record's user their primary identity row; mark the identity each sign-in used as used `now`.

    Runs in the users upsert's transaction, after it (records older than their user's deletion are
    already left out). A primary identity row is inserted only if missing (ON CONFLICT DO NOTHING:
    a row of another account is never moved). A record's `signed_in_with` ({"provider", "issuer",
    "subject"}: the identity the sign-in used, a linked one or the primary) sets that row's
    `last_used_at`, only if the row belongs to the record's user and only forwards; no row is made
    for it here. Rows are written in (issuer, subject) order, after the users rows, so two
    workers' transactions take their locks in the same order (no deadlock on PostgreSQL).
    """
    primaries = sorted({(record["issuer"], record["subject"]) for record in records})
    if not primaries:
        return
    connection = db.session.connection()
    found = connection.execute(_primary_identity_holders(), {"users": primaries}).all()
    missing = []
    for row in found:
        if is_moved_account(row.issuer):
            continue  # an account that moved to a new name has no identity of its own (accounts/moves.py)
        if row.holder is None:
            missing.append(
                {
                    "user_id": row.id,
                    "provider": provider_name(row.issuer),
                    "issuer": row.issuer,
                    "subject": row.subject,
                    "linked_at": row.created_at,  # the account's own identity came with the account
                }
            )
        elif row.holder != row.id:
            # Only a race can do this: the identity was linked to another account before this one's first
            # row was written. The link stays; identity_owner answers with this account, whose own it is.
            tag = user_tag(row.issuer, row.subject)
            log.error("the own identity of user %s is linked to another account; left there", tag)
    if missing:
        connection.execute(_insert_identity().on_conflict_do_nothing(index_elements=["issuer", "subject"]), missing)
    ids = {(row.issuer, row.subject): row.id for row in found}
    used = sorted(
        {
            (*identity, ids[(record["issuer"], record["subject"])])
            for record in records
            if (record["issuer"], record["subject"]) in ids and (identity := _signed_in_with(record)) is not None
        }
    )
    if used:
        connection.execute(
            _mark_used(),
            [
                {"used_issuer": issuer, "used_subject": subject, "owner": owner, "used_at": now}
                for issuer, subject, owner in used
            ],
        )


# Built once, run for every batch (models/batch_queries.py).


@lru_cache(maxsize=1)
def _primary_identity_holders() -> Select[Any]:
    """Each of the users :users, with the account holding its own identity's row (None: no row yet)."""
    users, identities = User.__table__.c, UserIdentity.__table__.c
    joined = User.__table__.outerjoin(
        UserIdentity.__table__, and_(identities.issuer == users.issuer, identities.subject == users.subject)
    )
    return (
        select(users.id, users.issuer, users.subject, users.created_at, identities.user_id.label("holder"))
        .select_from(joined)
        .where(pairs_in("users", users.issuer, users.subject))
        .order_by(users.issuer, users.subject)
    )


@lru_cache(maxsize=1)
def _mark_used() -> Update:
    """Move an identity's last use forward, only on a row of its owner (executemany: one row each)."""
    identities = UserIdentity.__table__.c
    return (
        update(UserIdentity)
        .where(
            identities.issuer == bindparam("used_issuer"),
            identities.subject == bindparam("used_subject"),
            identities.user_id == bindparam("owner"),
            or_(identities.last_used_at.is_(None), identities.last_used_at < bindparam("used_at")),
        )
        .values(last_used_at=bindparam("used_at"))
    )


@lru_cache(maxsize=1)
def _linked_elsewhere() -> Select[str, str]:
    """Which of the identities :identities are linked into an account that is not their own."""
    return (
        select(UserIdentity.issuer, UserIdentity.subject)
        .join(User, UserIdentity.user_id == User.id)
        .where(
            pairs_in("identities", UserIdentity.issuer, UserIdentity.subject),
            or_(User.issuer != UserIdentity.issuer, User.subject != UserIdentity.subject),
        )
    )


def _signed_in_with(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (issuer, subject) a record's sign-in used, if it names one."""
    used = record.get("signed_in_with")
    if used is None:
        return None
    if isinstance(used, Mapping) and isinstance(used.get("issuer"), str) and isinstance(used.get("subject"), str):
        return used["issuer"], used["subject"]
    # Never fail the user's upsert for it: the row matters more than a last-used time.
    tag = user_tag(record["issuer"], record["subject"])
    log.warning("a persistence record of user %s names no usable signed_in_with; ignored", tag)
    return None


def _insert_identity() -> Any:
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(UserIdentity.__table__)


# The jobs.


def link_identity(record: dict[str, Any]) -> None:
    """Link an identity to the account whose primary is (user_issuer, user_subject); never take another's."""
    try:
        user = user_tag(record["user_issuer"], record["user_subject"])
        account = (text_field(record, "user_issuer"), text_field(record, "user_subject"))
        provider, issuer, subject = (
            text_field(record, "provider"),
            text_field(record, "issuer"),
            text_field(record, "subject"),
        )
        linked_at = moment_field(record["linked_at"])
        if len(provider) > PROVIDER_MAX:
            raise ValueError("provider")
    except (KeyError, TypeError, ValueError) as error:
        give_up("link_identity got a malformed record", error)
    give_up_on = (*PERMANENT_FAILURES, AccountDeleted, IdentityTaken, LinkUndone)
    with job_transaction(log, "link_identity failed for user %s", user, give_up_on=give_up_on):
        _link(account, provider, issuer, subject, linked_at, user)


def _link(account: tuple[str, str], provider: str, issuer: str, subject: str, linked_at: datetime, user: str) -> None:
    deleted_at = db.session.execute(
        select(DeletedUser.deleted_at).where(DeletedUser.issuer == account[0], DeletedUser.subject == account[1])
    ).scalar()
    if deleted_at is not None and as_aware(deleted_at) >= linked_at:
        raise AccountDeleted(f"user {user} was deleted after the link was asked for")
    # A link job retried (its account had no row yet) after the user unlinked the identity again.
    unlinked_at = db.session.execute(
        select(IdentityUnlink.unlinked_at).where(
            IdentityUnlink.issuer == issuer,
            IdentityUnlink.subject == subject,
            IdentityUnlink.user_issuer == account[0],
            IdentityUnlink.user_subject == account[1],
        )
    ).scalar()
    if unlinked_at is not None and as_aware(unlinked_at) >= linked_at:
        raise LinkUndone(f"the identity was unlinked after its link to user {user} was asked for")
    user_id = _user_id(*account)
    if user_id is None:
        raise AccountNotStoredYet(f"user {user} has no row yet; retried")
    # The identity may be another account's own one, whose identity row a race left unwritten.
    other = _user_id(issuer, subject)
    if other is None or other == user_id:
        db.session.execute(
            _insert_identity()
            .values(user_id=user_id, provider=provider, issuer=issuer, subject=subject, linked_at=linked_at)
            .on_conflict_do_nothing(index_elements=["issuer", "subject"])
        )
        other = db.session.execute(
            select(UserIdentity.user_id).where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
        ).scalar()
        if other is None:  # deleted between the insert and this read (its account deleted, or unlinked)
            raise AccountNotStoredYet(f"the identity to link to user {user} changed meanwhile; retried")
    if other != user_id:
        holder = db.session.execute(select(User.issuer, User.subject).where(User.id == other)).first()
        log.error(
            "link_identity refused for user %s: the identity belongs to user %s; not moved",
            user,
            user_tag(*holder) if holder else "(being deleted)",
        )
        raise IdentityTaken(f"the identity belongs to another account than user {user}")


def unlink_identity(record: dict[str, Any]) -> None:
    """Remove an identity linked to the account whose primary is (user_issuer, user_subject); never its primary.

    Only a link asked for no later than the unlink goes (a link made again since stays), and the unlink's
    time is kept for the account (identity_unlinks), so a link job asked for before it and run after it
    stores nothing.
    """
    try:
        user = user_tag(record["user_issuer"], record["user_subject"])
        account = (text_field(record, "user_issuer"), text_field(record, "user_subject"))
        issuer, subject = text_field(record, "issuer"), text_field(record, "subject")
        # Queued before unlinks carried their time: the worker's clock, later than anything asked for before.
        unlinked_at = (
            moment_field(record["unlinked_at"], "unlinked_at") if "unlinked_at" in record else datetime.now(UTC)
        )
    except (KeyError, TypeError, ValueError) as error:
        give_up("unlink_identity got a malformed record", error)
    if (issuer, subject) == account:
        give_up(f"unlink_identity refused for user {user}", OwnIdentity())
    with job_transaction(log, "unlink_identity failed for user %s", user, give_up_on=PERMANENT_FAILURES):
        owner = select(User.id).where(User.issuer == account[0], User.subject == account[1]).scalar_subquery()
        # A row of another account, or none (never linked, already unlinked, account gone): nothing to do.
        db.session.execute(
            delete(UserIdentity).where(
                UserIdentity.issuer == issuer,
                UserIdentity.subject == subject,
                UserIdentity.user_id == owner,
                UserIdentity.linked_at <= unlinked_at,
            )
        )
        _remember_unlink(account, issuer, subject, unlinked_at)


def _remember_unlink(account: tuple[str, str], issuer: str, subject: str, unlinked_at: datetime) -> None:
    """Keep the account's latest unlink of the identity (an older one, run late, never moves it back)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(IdentityUnlink).values(
        issuer=issuer, subject=subject, user_issuer=account[0], user_subject=account[1], unlinked_at=unlinked_at
    )
    newer = insert.excluded.unlinked_at > IdentityUnlink.__table__.c.unlinked_at
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["issuer", "subject", "user_issuer", "user_subject"],
            set_={"unlinked_at": insert.excluded.unlinked_at},
            where=newer,
        )
    )


def _user_id(issuer: str, subject: str) -> int | None:
    found: int | None = db.session.execute(
        select(User.id).where(User.issuer == issuer, User.subject == subject)
    ).scalar()
    return found


# The web's questions.


def identity_owner(issuer: str, subject: str) -> tuple[str, str] | None:
    """The primary (issuer, subject) of the account that signs in with this identity, or None.

    An account's own identity is looked up first (its users row), then the linked ones.
    """
    try:
        own = db.session.execute(
            select(User.issuer, User.subject).where(User.issuer == issuer, User.subject == subject)
        ).first()
        if own is not None:
            return own.issuer, own.subject
        linked = db.session.execute(
            select(User.issuer, User.subject)
            .join(UserIdentity, UserIdentity.user_id == User.id)
            .where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
        ).first()
        return None if linked is None else (linked.issuer, linked.subject)
    finally:
        db.session.remove()


def account_identities(issuer: str, subject: str) -> list[LinkedIdentity]:
    """The identities of the account whose primary is (issuer, subject): the primary first, then by link time.

    An empty list when no such account is stored.
    """
    try:
        account = db.session.execute(
            select(User.id, User.created_at).where(User.issuer == issuer, User.subject == subject)
        ).first()
        if account is None:
            return []
        rows = db.session.execute(select(UserIdentity).where(UserIdentity.user_id == account.id)).scalars().all()
        found = [
            LinkedIdentity(
                provider=row.provider,
                issuer=row.issuer,
                subject=row.subject,
                linked_at=as_aware(row.linked_at).timestamp(),
                last_used_at=as_aware(row.last_used_at).timestamp() if row.last_used_at else None,
                primary=(row.issuer, row.subject) == (issuer, subject),
            )
            for row in rows
        ]
    finally:
        db.session.remove()
    if not any(identity.primary for identity in found) and not is_moved_account(issuer):
        # Written by a worker older than user_identities; its next sign-in's job writes the row. (An account
        # that moved to a new name has no identity of its own: accounts/moves.py.)
        found.append(
            LinkedIdentity(provider_name(issuer), issuer, subject, as_aware(account.created_at).timestamp(), None, True)
        )
    return sorted(found, key=lambda each: (not each.primary, each.linked_at, each.issuer, each.subject))


def listed_identities(users: Sequence[User]) -> dict[int, list[dict[str, str]]]:
    """For `users list`: each user's identities as plain data (by user id), the primary first, then by link time.

    An account that moved to a new name has no primary: its linked identities only.
    """
    rows: list[UserIdentity] = []
    ids = [user.id for user in users]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows += db.session.execute(select(UserIdentity).where(UserIdentity.user_id.in_(chunk))).scalars().all()
    by_user: dict[int, list[UserIdentity]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    listed = {}
    for user in users:
        own = (user.issuer, user.subject)
        linked = sorted(
            (row for row in by_user.get(user.id, []) if (row.issuer, row.subject) != own),
            key=lambda row: (as_aware(row.linked_at), row.id),
        )
        primary = next((row for row in by_user.get(user.id, []) if (row.issuer, row.subject) == own), None)
        if primary is None and is_moved_account(own[0]):
            listed[user.id] = [row.to_dict() for row in linked]  # no identity of its own (accounts/moves.py)
            continue
        # No row for the user's own identity: written by a worker older than user_identities.
        first = (
            primary.to_dict() if primary else {"provider": provider_name(own[0]), "issuer": own[0], "subject": own[1]}
        )
        listed[user.id] = [first, *(row.to_dict() for row in linked)]
    return listed


def without_linked_identities(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records that are not of an identity linked into another account (one query for the whole batch).

    Such a record comes from a sign-in that could not learn of the link (the session store had lost
    it, and sign-ins never ask the database): it must not become an account of its own
    (accounts/relinking.py folds it back into its account).
    """
    wanted = {(record["issuer"], record["subject"]) for record in records}
    if not wanted:
        return []
    linked = db.session.execute(_linked_elsewhere(), {"identities": sorted(wanted)}).all()
    elsewhere = {(row.issuer, row.subject) for row in linked}
    for issuer, subject in sorted(elsewhere):
        log.warning("not storing an account for user %s: it is linked into another account", user_tag(issuer, subject))
    return [record for record in records if (record["issuer"], record["subject"]) not in elsewhere]


def account_linked_into(issuer: str, subject: str) -> tuple[User, UserIdentity] | None:
    """The account this identity is linked into (not its own) and the identity's row, or None (current session)."""
    row = db.session.execute(
        select(User, UserIdentity)
        .join(UserIdentity, UserIdentity.user_id == User.id)
        .where(
            UserIdentity.issuer == issuer,
            UserIdentity.subject == subject,
            or_(User.issuer != issuer, User.subject != subject),
        )
    ).first()
    return None if row is None else (row[0], row[1])
