"""The Lua scripts behind sessions (sessions/lua/*.lua), registered on one Redis client.

Each script touches only keys of one user's hash tag, so it runs atomically on one
Redis (or one Cluster slot) and costs one round trip.

Writes that a user is told about (a sign-in, a sign-out or revocation, a disable, a deletion,
a saved profile) go through `replicated`: with REDIS_WAIT_REPLICAS set, the write is followed,
on the same connection and in the same round trip, by WAIT for that many replicas, so a
failover to a replica cannot undo what was acknowledged. Too few replicas in time raise
`WriteNotReplicated`: the request is answered 503 and the user tries again. Page views never wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis import Redis
from redis.commands.core import Script

from connections import WriteNotReplicated

LUA_DIR = Path(__file__).resolve().parent / "lua"
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
)


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

    def __init__(self, client: Redis, *, wait_replicas: int = 0, wait_timeout_ms: int = 0):
        self.client = client
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        for name in NAMES:
            # As bytes: for text, redis-py asks the client for its encoder, and a cluster client would connect.
            setattr(self, name, client.register_script((LUA_DIR / f"{name}.lua").read_bytes()))

    def replicated(
        self, script: Script, *, keys: Sequence[str], args: Sequence[Any], then: Sequence[Sequence[Any]] = ()
    ) -> Any:
        """Run a write script (and the commands `then` lists), acknowledged only once replicated; its result.

        Without REDIS_WAIT_REPLICAS it is the plain call. With it, the calls and WAIT share one
        connection (WAIT covers that connection's writes) and one round trip.
        """
        if not self.wait_replicas:
            result = script(keys=keys, args=args)
            for command in then:
                self.client.execute_command(*command)  # type: ignore[no-untyped-call]
            return result
        with self.client.pipeline(transaction=False) as pipe:
            script(keys=keys, args=args, client=pipe)
            for command in then:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)  # type: ignore[no-untyped-call]
            replies = pipe.execute()
        confirmed = int(replies[-1])
        if confirmed < self.wait_replicas:
            raise WriteNotReplicated(
                f"{confirmed} of {self.wait_replicas} replicas confirmed a write within {self.wait_timeout_ms} ms"
            )
        return replies[0]
