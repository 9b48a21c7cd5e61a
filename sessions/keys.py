"""Where session data lives in Redis, and what a session id looks like.

Every key a signed-in request reads together carries the user's hash tag
`{U}` (U is derived from issuer and subject), so Redis Cluster keeps them in one
slot and one Lua script can read them in one round trip:

    gh:{U}:u       hash    per-user state: identity, profile (msgpack arrays, users/schema.py) and their versions,
                           confirmed/disabled flags, "not valid before"; identity ("i") and profile ("p")
                           in pieces of 64 bytes ("i", "i2", ...) so the hash stays a compact listpack
                           (sessions/long_fields.py); and the index of the user's sessions: a field "x:R" per
                           session, when it expires at the latest (whole seconds, rounded up;
                           sessions/lua/lib/session_index.lua)
    gh:{U}:x       zset    that index as stored before 2026-12-07 (member R, the same score) and by
                           SESSION_LAYOUT=whole
    gh:{U}:s:R     hash    one session: app data (msgpack, in pieces "d", "d2", ...; none while empty), created
                           (seconds, to the millisecond), auth time, provider sid, device, address, last seen
                           (from its first write), and with SESSION_LAYOUT=whole or from before 2026-12-08 its
                           handle (else derived from R; sessions/record_fields.py); and its tokens,
                           "<generation>|<msgpack>" (sessions/token_record.py) in 64-byte pieces "t", "t2", ...
                           (sessions/long_fields.py; read only by requests that call the API, never by the page
                           script)
    gh:{U}:t:R     string  that session's tokens instead, when too long for pieces (over 1 KB), or when stored
                           before 2026-12 (then possibly a hash)
    gh:{U}:l:R     string  the lease of the one request refreshing those tokens
    gh:a:R         hash    an anonymous session (a sign-in in progress)
    gh:i:<digest>  string  an identity (issuer, subject) linked into an account whose U is not its own -> U
                           (the account's state lists it too: fields "l:<digest>" and "lp:<provider>")
    gh:p:<digest>  hash    a provider session (`sid`): the users U it signed in, and when it was
                           logged out ("!out", "!out:U"), for back-channel logout by `sid`
    gh:j:<digest>  string  a back-channel logout token's jti, so it cannot be replayed

A signed-in session id is "U.R", an anonymous one "R", where R is 256 random bits.
The cookie carries only that id; U identifies no one without the user's issuer
and subject, and the handle shown on /sessions is a one-way digest of R that tells nothing of it.
"""

from __future__ import annotations

import hashlib
import re
import secrets

# A user's keys carry their opaque id (users/tags.py) as hash tag.
from users.tags import user_tag as user_tag

PREFIX = "gh:"
RANDOM_BYTES = 32

_B64 = r"[A-Za-z0-9_-]"
_RANDOM = rf"{_B64}{{43}}"
_USER_TAG = rf"{_B64}{{20}}"
# \Z, not $: "$" also matches before a trailing newline, which would let "R\n" pass for "R".
SIGNED_IN_SID = re.compile(rf"^(?P<user>{_USER_TAG})\.(?P<random>{_RANDOM})\Z")
ANONYMOUS_SID = re.compile(rf"^(?P<random>{_RANDOM})\Z")
# A session's handle: derived, 32 hex digits (sessions/record_fields.py), or the 22 random characters a
# session stored before 2026-12-08 keeps.
HANDLE = re.compile(rf"^(?:[0-9a-f]{{32}}|{_B64}{{22}})\Z")


def new_random() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(RANDOM_BYTES)


def signed_in_sid(user: str, random_part: str) -> str:
    """The id of a signed-in session."""
    return f"{user}.{random_part}"


def parse_sid(sid: str | None) -> tuple[str | None, str] | None:
    """(user tag or None for anonymous, random part) of a well-formed id; None for anything else."""
    if not sid or len(sid) > 64:
        return None
    match = SIGNED_IN_SID.match(sid)
    if match:
        return match["user"], match["random"]
    match = ANONYMOUS_SID.match(sid)
    if match:
        return None, match["random"]
    return None


def user_key(user: str) -> str:
    """Per-user state."""
    return f"{PREFIX}{{{user}}}:u"


def index_key(user: str) -> str:
    """The user's sessions, as indexed before 2026-12-07 (and by SESSION_LAYOUT=whole)."""
    return f"{PREFIX}{{{user}}}:x"


# The field of the user's state that indexes one of their sessions (sessions/lua/lib/session_index.lua).
INDEX_FIELD = "x:"


def index_field(random_part: str) -> str:
    """The field of the user's state that indexes the session `random_part`."""
    return f"{INDEX_FIELD}{random_part}"


def session_key(user: str | None, random_part: str) -> str:
    """One session's record."""
    if user is None:
        return f"{PREFIX}a:{random_part}"
    return f"{PREFIX}{{{user}}}:s:{random_part}"


def signed_in_keys(user: str, random_part: str) -> list[str]:
    """The keys a signed-in session's scripts read together: session, user state, index, tokens."""
    return [session_key(user, random_part), user_key(user), index_key(user), tokens_key(user, random_part)]


def tokens_key(user: str, random_part: str) -> str:
    """One session's tokens."""
    return f"{PREFIX}{{{user}}}:t:{random_part}"


def lease_key(user: str, random_part: str) -> str:
    """The refresh lease of one session's tokens."""
    return f"{PREFIX}{{{user}}}:l:{random_part}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def provider_session_key(issuer: str, provider_sid: str) -> str:
    """A provider session (`sid` claim): the users whose sessions it started, and its logouts."""
    return f"{PREFIX}p:{_digest(issuer, provider_sid)}"


def logout_token_key(issuer: str, jti: str) -> str:
    """Marks a back-channel logout token as used."""
    return f"{PREFIX}j:{_digest(issuer, jti)}"


def identity_digest(issuer: str, subject: str) -> str:
    """An identity's name in keys and fields (no personal data in key names)."""
    return _digest("identity", issuer, subject)


def identity_link_key(issuer: str, subject: str) -> str:
    """Names the account an identity was linked into (only for an identity that did not create it)."""
    return f"{PREFIX}i:{identity_digest(issuer, subject)}"


def link_field(issuer: str, subject: str) -> str:
    """The field of the account's state that lists one linked identity."""
    return f"l:{identity_digest(issuer, subject)}"
