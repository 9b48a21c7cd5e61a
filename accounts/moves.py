"""Unlinking the identity that created an account: the account moves to a new name, and keeps everything else.

An account is named by its creating identity everywhere: its Redis keys (users/tags.py), its users row,
its tombstones and every job's record. That identity cannot simply stop being one of its sign-ins: a
sign-in never asks the database, so its next one would open the same keys, and after the session store
lost its data it would even write the account's row again. So the account moves to a name no provider
can issue, `(MOVED_ACCOUNT_ISSUER, random)`, using the deletion's machinery for the old name:

1. the web (`move_current_account`): one script takes the account's state and leaves the deletion's
   tombstone (every session ends; refused unless a linked identity remains, so two tabs cannot together
   unlink every sign-in); the `move_account` job is queued with that snapshot (kept in the outbox if the
   queue is down; put back if it cannot be kept at all); the state opens under the new name, each link
   leading there. The person signs in again with one of the remaining identities.
2. the worker (`move_account`), in one transaction: the old row is renamed in place and given the
   snapshot's data (its id and creation time stay), or, when another row already holds either name, the
   new name's row is written from the snapshot. The snapshot's links are the account's identities, and its
   audit trail follows it. The old name is buried at the tombstone's version, so a late job of the old name
   changes nothing (the snapshot already holds what it carried), and the old name's next sign-in starts a
   new account, as after a deletion.

If the web stops between 1's steps, the links' next sign-in is folded back into the account from the
database (accounts/relinking.py), as after the store lost its data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from accounts.deletion import bury
from accounts.job_records import moment_field, text_field
from accounts.persistence import publish_rows, user_record
from accounts.upsert import upsert_users
from audit import events as audit
from extensions import db
from jobs.failures import PERMANENT_FAILURES, give_up, job_transaction
from jobs.queues import enqueue
from models.audit import AuditEvent
from models.user import User, utcnow
from models.user_identity import PROVIDER_MAX, UserIdentity
from oidc.provider import oidc_providers
from sessions.account_moves import MovedOut, move_out, open_moved, put_back
from sessions.identity_links import Link
from sessions.lifecycle import end_user_session
from sessions.user import current_session
from users.schema import IDENTITY_CLAIMS, PROFILE_FIELDS, Identity, clean_record, identity_dict, profile_dict
from users.tags import MOVED_ACCOUNT_ISSUER, is_moved_account, user_tag

log = logging.getLogger(__name__)

# Random bytes of a moved account's new subject: as unguessable as a session id.
NEW_NAME_BYTES = 24


def move_current_account() -> int:
    """Unlink the signed-in account's own identity; every session of the account ends. How many ended.

    Raises NoLinkLeft and AccountGone (sessions/account_moves.py) with nothing changed, and SQLAlchemyError
    when the job could be kept neither on the queue nor in the outbox (the account is then put back).
    """
    stored = current_session()
    identity = stored.identity
    if identity is None or stored.user is None:
        raise LookupError("no signed-in user")
    own = oidc_providers().issuing(identity.issuer)
    moved = move_out(stored.user)
    new_identity = msgspec.structs.replace(
        identity, issuer=MOVED_ACCOUNT_ISSUER, subject=secrets.token_urlsafe(NEW_NAME_BYTES)
    )
    try:
        enqueue(move_account, move_record(identity, new_identity, moved, utcnow()))
    except SQLAlchemyError:
        put_back(stored.user, own.name if own else "", moved)
        raise
    # Under the new name: the job moves the rest of the account's trail there (whatever is stored by then).
    audit.record(
        "identity_unlinked",
        "user",
        issuer=new_identity.issuer,
        subject=new_identity.subject,
        session_handle=stored.handle,
        detail=own.name if own else None,
    )
    open_moved(user_tag(new_identity.issuer, new_identity.subject), new_identity, moved)
    end_user_session()
    return moved.ended


def move_record(old: Identity, new: Identity, moved: MovedOut, moved_at: datetime) -> dict[str, Any]:
    """The move_account job's record: both names, the account as it moved, its links, the tombstone."""
    return {
        **user_record(
            identity_dict(new),
            profile_dict(moved.profile, moved.profile_version),
            identity_version=moved.identity_version,
            profile_version=moved.profile_version,
        ),
        "old_issuer": old.issuer,
        "old_subject": old.subject,
        "moved_version": moved.version,
        "moved_at": moved_at.isoformat(),
        "links": [
            {
                "provider": link.provider,
                "issuer": link.issuer,
                "subject": link.subject,
                "linked_at": datetime.fromtimestamp(link.linked_at, UTC).isoformat(),
            }
            for link in moved.links
        ],
    }


def move_account(record: dict[str, Any]) -> None:
    """Give the account its new name in the database and bury the old one; run twice, it changes nothing more."""
    try:
        user = user_tag(record["old_issuer"], record["old_subject"])
        old = (text_field(record, "old_issuer"), text_field(record, "old_subject"))
        new = (text_field(record, "issuer"), text_field(record, "subject"))
        if not is_moved_account(new[0]) or is_moved_account(old[0]):
            raise ValueError("issuer")
        version = int(record["moved_version"])
        moved_at = moment_field(record["moved_at"], "moved_at")
        links = [_link(each) for each in record["links"]]
        if not links:
            raise ValueError("links")
        for field in ("identity_version", "profile_version"):
            int(record[field])
    except (KeyError, TypeError, ValueError) as error:
        give_up("move_account got a malformed record", error)
    with job_transaction(log, "move_account failed for user %s", user, give_up_on=PERMANENT_FAILURES):
        _move(old, new, version, moved_at, clean_record(_user_part(record)), links)
        db.session.commit()
        publish_rows([new])
    log.info("user %s moved to %s", user, user_tag(*new))


def _move(
    old: tuple[str, str], new: tuple[str, str], version: int, moved_at: datetime, row: dict[str, Any], links: list[Link]
) -> None:
    """The move in the current transaction; rows in the upsert's order (users, then identities, then the rest)."""
    old_row = db.session.execute(
        select(User.id, User.identity_version, User.profile_version)
        .where(User.issuer == old[0], User.subject == old[1])
        .with_for_update()
    ).first()
    new_id = _user_id(new)
    # A newer row under the old name is a new account a sign-in made after the move: it stays.
    renamed = None
    if new_id is None and old_row is not None and max(old_row.identity_version, old_row.profile_version) <= version:
        renamed = old_row.id
    if renamed is not None:
        # The snapshot is the account as it was, whatever the row says: an edit the row holds beyond it was
        # refused in Redis (its save raced the move and was told so), and its job ran before this one.
        moved_columns = {name: row.get(name) for name in (*IDENTITY_CLAIMS, *PROFILE_FIELDS)}
        db.session.execute(
            update(User)
            .where(User.id == renamed)
            .values(
                issuer=new[0],
                subject=new[1],
                **moved_columns,
                identity_version=int(row["identity_version"]),
                profile_version=int(row["profile_version"]),
                updated_at=utcnow(),
            )
        )
    upsert_users([row])  # the account as it moved; version-guarded, so a newer job of the new name stays
    new_id = _user_id(new)
    if new_id is None:  # the upsert always leaves the row; this would be a bug
        raise RuntimeError("the moved account has no row")
    _take_identities(new_id, old_row.id if old_row is not None else None, links)
    if renamed is not None:
        # The account's identities are the snapshot's: its own one goes, as does a link unlinked before the move.
        kept = {(link.issuer, link.subject) for link in links}
        for stale in db.session.execute(select(UserIdentity).where(UserIdentity.user_id == new_id)).scalars():
            if (stale.issuer, stale.subject) not in kept:
                db.session.delete(stale)
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.issuer == old[0], AuditEvent.subject == old[1], AuditEvent.occurred_at <= moved_at)
        .values(issuer=new[0], subject=new[1])
    )
    bury(*old, version, moved_at)


def _take_identities(new_id: int, old_id: int | None, links: Sequence[Link]) -> None:
    """Each link's row, belonging to the moved account: inserted, or taken from its old row; another's stays."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    for link in sorted(links, key=lambda each: (each.issuer, each.subject)):
        insert = dialect.insert(UserIdentity).values(
            user_id=new_id,
            provider=link.provider,
            issuer=link.issuer,
            subject=link.subject,
            linked_at=datetime.fromtimestamp(link.linked_at, UTC),
        )
        owner = UserIdentity.__table__.c.user_id
        db.session.execute(
            insert.on_conflict_do_update(
                index_elements=["issuer", "subject"],
                set_={"user_id": new_id},
                where=owner == (old_id if old_id is not None else new_id),
            )
        )
        holder = db.session.execute(
            select(UserIdentity.user_id).where(UserIdentity.issuer == link.issuer, UserIdentity.subject == link.subject)
        ).scalar()
        if holder != new_id:
            # Only a race can do this (the identity made an account of its own meanwhile): never moved.
            log.error("a moved account's link belongs to another account; left there")


def _user_part(record: Mapping[str, Any]) -> dict[str, Any]:
    """The persistence record within a move's record (the new name, the identity claims, the profile)."""
    moving = {"old_issuer", "old_subject", "moved_version", "moved_at", "links"}
    return {key: value for key, value in record.items() if key not in moving}


def _link(value: Any) -> Link:
    if not isinstance(value, Mapping):
        raise TypeError("links")
    provider = text_field(value, "provider")
    if len(provider) > PROVIDER_MAX:
        raise ValueError("provider")
    linked_at = moment_field(value["linked_at"])
    return Link(provider, text_field(value, "issuer"), text_field(value, "subject"), linked_at.timestamp())


def _user_id(name: tuple[str, str]) -> int | None:
    found: int | None = db.session.execute(
        select(User.id).where(User.issuer == name[0], User.subject == name[1])
    ).scalar()
    return found
