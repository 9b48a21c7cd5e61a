"""Sessions starting and ending: sign-in, sign-out, and revocation by the user, the provider or an operator.

Revocation touches only the keys of one user (their index and its sessions), so
it costs O(that user's sessions) whatever else Redis holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request

from oidc.provider import provider_named
from sessions import keys
from sessions.devices import describe_device
from sessions.record_fields import new_session_handle, session_handle, stored_creation_time, stored_provider_sid
from sessions.scripts import ScriptCall
from sessions.store import StoredSession, empty, encode_data, session_store
from sessions.token_record import pack_tokens
from sessions.user import current_session
from users.schema import Identity, Profile, decode_profile

log = logging.getLogger(__name__)


class AccountDisabled(Exception):
    """The user is disabled: no session may start."""


class StaleLink(Exception):
    """The identity's link leads to an account that no longer lists it (unlinked, or deleted): no session started."""


class ProviderSessionEnded(Exception):
    """The provider logged out the provider session (`sid`) while its sign-in was completing: no session started."""


def start_user_session(
    *,
    identity: Identity,
    profile: Profile,
    tokens: Mapping[str, Any],
    data: Mapping[str, Any],
    provider_sid: str | None,
    auth_time: int | None,
    issued_at: int,
    provider: str,
    link_field: str = "",
) -> StoredSession:
    """Replace the browser's session with a new signed-in one under a new id.

    `issued_at` is the ID token's `iat`, `provider` the name of the provider it came from. `identity` is
    the account's own; a sign-in with an identity linked into the account names its `link_field`
    (sessions/keys.py), and the account keeps its identity. Raises AccountDisabled, StaleLink, and
    ProviderSessionEnded when a
    back-channel logout of the provider session arrived before this sign-in named its user.
    """
    store = session_store(current_app)
    stored = current_session()
    if stored.version is not None:
        store.end(stored)
    empty(stored)
    user, member = keys.user_tag(identity.issuer, identity.subject), keys.new_random()
    handle = new_session_handle(member, compact=store.scripts.compact)
    now = stored_creation_time(time.time())
    config = current_app.config
    sign_in = ScriptCall(
        store.scripts.sign_in,
        keys.signed_in_keys(user, member),
        [
            now,
            store.idle_timeout,
            store.absolute_timeout,
            config["USER_STATE_TTL"],
            config["SESSIONS_PER_USER"],
            member,
            encode_data(data),
            handle,
            stored_provider_sid(provider_sid or "", compact=store.scripts.compact),
            describe_device(request.user_agent.string),
            request.remote_addr or "",
            "" if auth_time is None else auth_time,
            "" if link_field else store.scripts.pack(identity),
            store.scripts.pack(profile),
            pack_tokens(tokens, keep_id_token=provider_named(provider).keeps_id_token),
            keys.session_key(user, ""),
            keys.tokens_key(user, ""),
            store.seen_interval,
            provider,
            link_field,
        ],
    )
    # Back-channel logout may name only the provider session: name its user there, after the session exists.
    calls = [sign_in, *_join_provider_session(identity.issuer, provider_sid, user, issued_at)]
    result, *joined = store.scripts.replicated_all(calls)
    if result[0] == b"disabled":
        raise AccountDisabled(user)
    if result[0] == b"unlinked":
        raise StaleLink(user)
    if joined and not joined[0]:
        end_sessions(user, "member", member)
        raise ProviderSessionEnded(user)
    stored.update(data)
    stored.sid, stored.user, stored.member = keys.signed_in_sid(user, member), user, member
    stored.handle = handle
    stored.loaded, stored.version, stored.created_at, stored.issued = dict(data), "1", now, True
    stored.identity, stored.profile = identity, decode_profile(result[1])
    stored.profile_version, stored.confirmed = int(result[2] or 0), result[3] == b"1"
    stored.destroyed = False
    stored.modified = False
    stored.identity_version = int(result[4])
    stored.provider_name = provider
    return stored


def _join_provider_session(issuer: str, provider_sid: str | None, user: str, issued_at: int) -> list[ScriptCall]:
    """The call naming `user` among the provider session's users (none without a `sid`).

    It runs after the script that stores the session, so whatever the order of a sign-in and a
    back-channel logout of its provider session, the session ends: a logout before the naming is
    seen by it (provider_session.lua "join" answers 0), one after it finds the user and the session.
    """
    if not provider_sid:
        return []
    store = session_store(current_app)
    lookup = keys.provider_session_key(issuer, provider_sid)
    return [ScriptCall(store.scripts.provider_session, [lookup], ["join", user, issued_at, store.absolute_timeout])]


def record_auth_time(stored: StoredSession, auth_time: int, provider_sid: str | None, issued_at: int) -> bool:
    """Store the session's new auth time after a re-authentication, and the provider session it came with.

    A provider may start a new session (a new `sid`) at the `max_age` / `prompt=login` round trip and later
    log that one out by back-channel: the session takes the new `sid`, and the `sid` lookup names its user.
    False if the session no longer exists, or that provider session was logged out meanwhile (then it ends).
    """
    if stored.user is None or stored.member is None:
        return False
    # set_auth_time.lua sets it only while the session exists (no stray hash for a session signed out meanwhile).
    store = session_store(current_app)
    set_auth_time = ScriptCall(
        store.scripts.set_auth_time,
        [keys.session_key(stored.user, stored.member)],
        [auth_time, stored_provider_sid(provider_sid or "", compact=store.scripts.compact)],
    )
    join = (
        _join_provider_session(stored.identity.issuer, provider_sid, stored.user, issued_at) if stored.identity else []
    )
    done, *joined = store.scripts.replicated_all([set_auth_time, *join])
    if done != 1:
        return False
    if joined and not joined[0]:
        end_sessions(stored.user, "member", stored.member)
        return False
    stored.auth_time = auth_time
    return True


def end_user_session() -> None:
    """Sign out: delete this session's record, tokens and index entry, and clear its cookie."""
    session_store(current_app).destroy(current_session())


def end_sessions(
    user: str,
    mode: str,
    argument: str | float = "",
    *,
    keep: str = "",
    provider: str = "",
    app: Flask | None = None,
) -> int:
    """End sessions of one user (modes of sessions/lua/end_sessions.lua); returns how many ended.

    With `provider`, the provider_sid and before modes end only sessions signed in with that provider.
    """
    store = session_store(app or current_app)
    args: list[str | bytes | float] = [
        keys.session_key(user, ""),
        keys.tokens_key(user, ""),
        mode,
        argument,
        keep,
        time.time(),
        provider,
    ]
    if mode == "provider_sid":
        # Sessions store a UUID sid in a shorter form (sessions/record_fields.py); older ones as text.
        compact = stored_provider_sid(str(argument), compact=True)
        args.append(compact if compact != argument else "")
    ended = store.scripts.replicated(
        store.scripts.end_sessions, keys=[keys.user_key(user), keys.index_key(user)], args=args
    )
    return int(ended)


@dataclass(frozen=True)
class DeviceSession:
    """One of the user's sessions as the devices page shows it."""

    handle: str
    signed_in_at: float
    last_seen_at: float
    device: str
    address: str
    current: bool
    # The provider's name (None for a session stored before sessions kept it).
    provider: str | None


def list_sessions() -> list[DeviceSession]:
    """Every live session of the signed-in user, newest sign-in first."""
    found = [device for _, device in _listed_sessions()]
    return sorted(found, key=lambda row: (not row.current, -row.signed_in_at))


def _listed_sessions() -> list[tuple[str, DeviceSession]]:
    """The signed-in user's live sessions, each with its member (the random part of its id)."""
    stored = current_session()
    if stored.user is None:
        return []
    store = session_store(current_app)
    rows = store.scripts.list(
        keys=[keys.user_key(stored.user), keys.index_key(stored.user)],
        args=[keys.session_key(stored.user, ""), time.time()],
    )
    found = []
    for start in range(0, len(rows), 7):
        member, handle, created, seen, device, address, provider = (value.decode() for value in rows[start : start + 7])
        device_session = DeviceSession(
            handle=handle or session_handle(member),
            signed_in_at=float(created),
            last_seen_at=float(seen or created),
            device=device or "Unknown device",
            address=address,
            current=member == stored.member,
            provider=provider or None,
        )
        found.append((member, device_session))
    return found


def revoke_session(handle: str) -> bool:
    """End one other session of the signed-in user, named by its handle; False if it is not theirs."""
    stored = current_session()
    if stored.user is None or not keys.HANDLE.match(handle) or handle == stored.handle:
        return False
    # Handles are derived in Python (sessions/record_fields.py), so the member is found here: one more round trip,
    # on a revoke only. A session that ends meanwhile is simply not ended twice.
    member = next((member for member, device in _listed_sessions() if device.handle == handle), None)
    if member is None:
        return False
    return end_sessions(stored.user, "member", member, keep=stored.member or "") > 0


def revoke_other_sessions() -> int:
    """End every session of the signed-in user but this one; returns how many ended."""
    stored = current_session()
    if stored.user is None:
        return 0
    return end_sessions(stored.user, "all", keep=stored.member or "")
