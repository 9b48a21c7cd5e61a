"""The Lua scripts behind sessions (sessions/lua/*.lua), registered on one Redis client.

Each script touches only keys of one user's hash tag, so it runs atomically on one
Redis (or one Cluster slot) and costs one round trip.

Writes that a user is told about (a sign-in, a sign-out or revocation, a disable, a deletion,
a saved profile) go through `replicated`: with REDIS_WAIT_REPLICAS set, the write is followed,
on the same connection and in the same pipeline, by WAIT for that many replicas, so a
failover to a replica cannot undo what was acknowledged. Too few replicas in time raise
`WriteNotReplicated`: the request is answered 503 and the user tries again. Page views never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from redis import Redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, TryAgainError

from connections import WriteNotReplicated
from users.schema import Identity, Profile, encode

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Shared functions, each file put in front of every script that calls one of its functions:
# how a user's state keeps long values in pieces, whether it lists linked identities, and the index of the
# user's sessions it keeps.
LONG_FIELDS = LUA_DIR / "lib" / "long_fields.lua"
LINKS = LUA_DIR / "lib" / "links.lua"
SESSION_INDEX = LUA_DIR / "lib" / "session_index.lua"
_LIBRARIES = (
    (LONG_FIELDS, (b"read_long(", b"write_long(", b"compact_state(", b"fits_pieces(", b"drop_pieces(")),
    (LINKS, (b"has_links(", b"link_count(")),
    (SESSION_INDEX, (b"index_members(", b"index_add(", b"index_remove(")),
)
# A replicated write on a Cluster follows this many redirects (a live resharding) before it gives up.
CLUSTER_ATTEMPTS = 5
# How long a write caught in a slot's migration (TRYAGAIN) waits before it tries again.
TRY_AGAIN_SECONDS = 0.05
NAMES = (
    "read",
    "create",
    "write",
    "sign_in",
    "end_sessions",
    "list",
    "profile_reserve",
    "profile_commit",
    "persisted",
    "set_disabled",
    "tokens_commit",
    "delete_user",
    "set_auth_time",
    "lease",
    "provider_session",
    "link",
    "compare_delete",
)


def script_source(name: str, *, compact: bool = True) -> bytes:
    """The text of sessions/lua/<name>.lua as Redis runs it: with each shared file in front whose functions it calls.

    Redis scripts cannot import one another; a shared file in front keeps one copy of the rule in the repository.
    `compact` False (SESSION_LAYOUT=whole) makes them write long values whole and tokens beside the session, as
    Gatehouse did before 2026-12, while still reading both forms.
    """
    source = (LUA_DIR / f"{name}.lua").read_bytes()
    needed = [library.read_bytes() for library, calls in _LIBRARIES if any(call in source for call in calls)]
    if not needed:
        return source
    # The long-fields functions read which layout to write (SESSION_LAYOUT); the switch costs nothing elsewhere.
    switch = b"local COMPACT = true\n" if compact else b"local COMPACT = false\n"
    return b"\n".join([switch, *needed, source])


class ScriptCall(NamedTuple):
    """One call of a registered script: what `SessionScripts.replicated_all` runs in order."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Any]


class SessionScripts:
    """One registered script per file in sessions/lua, as attributes (`scripts.read(keys=…, args=…)`)."""

    read: Script
    create: Script
    write: Script
    sign_in: Script
    end_sessions: Script
    list: Script
    profile_reserve: Script
    profile_commit: Script
    persisted: Script
    set_disabled: Script
    tokens_commit: Script
    delete_user: Script
    set_auth_time: Script
    lease: Script
    provider_session: Script
    link: Script
    compare_delete: Script

    def __init__(self, client: Redis, *, wait_replicas: int = 0, wait_timeout_ms: int = 0, compact: bool = True):
        self.client = client
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        # SESSION_LAYOUT: the layout the scripts write, and the form users/schema.py encodes what they store.
        self.compact = compact
        for name in NAMES:
            # As bytes: for text, redis-py asks the client for its encoder, and a cluster client would connect.
            setattr(self, name, client.register_script(script_source(name, compact=compact)))

    def pack(self, value: Identity | Profile) -> bytes:
        """An identity or profile in the form these scripts store it (users/schema.py `encode`, per SESSION_LAYOUT)."""
        return encode(value, compact=self.compact)

    def replicated(self, script: Script, *, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a write script, acknowledged only once replicated; its result."""
        return self.replicated_all([ScriptCall(script, keys, args)])[0]

    def replicated_all(self, calls: Sequence[ScriptCall]) -> tuple[Any, ...]:
        """Run write scripts one after another, acknowledged only once replicated; their results.

        Without REDIS_WAIT_REPLICAS they are the plain calls. With it, the calls and WAIT share one
        connection (WAIT covers that connection's writes) in one pipeline; on a Cluster, one per
        slot the calls touch.
        """
        if not self.wait_replicas:
            return tuple(call.script(keys=call.keys, args=call.args) for call in calls)
        if isinstance(self.client, RedisCluster):
            # Each call waits on the node that serves its key's slot (WAIT counts that node's replicas).
            return tuple(
                self._on_slot_node(
                    self.client, call.keys[0], lambda pipe, call=call: call.script(call.keys, call.args, pipe)
                )
                for call in calls
            )
        with self.client.pipeline(transaction=False) as pipe:
            for call in calls:
                call.script(keys=call.keys, args=call.args, client=pipe)
            return self._waited(pipe)

    def _waited(self, pipe: Pipeline) -> tuple[Any, ...]:
        """Add WAIT to the pipeline and run it; its replies but WAIT's, or WriteNotReplicated."""
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)  # type: ignore[no-untyped-call]
        replies = pipe.execute()
        confirmed = int(replies[-1])
        if confirmed < self.wait_replicas:
            raise WriteNotReplicated(
                f"{confirmed} of {self.wait_replicas} replicas confirmed a write within {self.wait_timeout_ms} ms"
            )
        return tuple(replies[:-1])

    def _on_slot_node(self, cluster: RedisCluster, key: Any, call: Callable[[Pipeline], object]) -> Any:
        """`call` and WAIT on one connection of the node serving `key`'s slot, following redirects.

        A moved slot (MOVED) re-reads the slot map; a slot being migrated sends the call to the importing
        node (ASK, after ASKING); keys caught between two nodes mid-migration (TRYAGAIN) are tried again.
        """
        node = cluster.get_node_from_key(key)  # type: ignore[no-untyped-call]
        asking = False
        for attempt in range(1, CLUSTER_ATTEMPTS + 1):
            with cluster.get_redis_connection(node).pipeline(transaction=False) as pipe:
                if asking:
                    pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
                call(pipe)
                try:
                    return self._waited(pipe)[-1]
                except MovedError as moved:
                    cluster.nodes_manager.initialize()
                    node, asking = cluster.get_node_from_key(key), False  # type: ignore[no-untyped-call]
                    if attempt == CLUSTER_ATTEMPTS:
                        raise moved
                except AskError as ask:
                    node, asking = cluster.get_node(ask.host, ask.port), True  # type: ignore[no-untyped-call]
                    if node is None or attempt == CLUSTER_ATTEMPTS:
                        raise
                except TryAgainError:
                    if attempt == CLUSTER_ATTEMPTS:
                        raise
                    time.sleep(TRY_AGAIN_SECONDS)
        raise AssertionError("unreachable")
