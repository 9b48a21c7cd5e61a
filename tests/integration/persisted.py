"""What the worker persisted, read as an operator would: `flask --app app users list --json`."""

from __future__ import annotations

from typing import Any

from tests.support.polling import wait_until
from tests.support.stack import Stack


def user_rows(stack: Stack, subject: str) -> list[dict[str, Any]]:
    """The persisted rows of one user at the stack's provider."""
    return [row for row in stack.users() if row["subject"] == subject and row["issuer"] == stack.provider_url]


def wait_for_row(stack: Stack, subject: str, *, timeout: float = 30.0, **expected: Any) -> dict[str, Any]:
    """Poll `users list --json` until the user's row exists (with the `expected` values); return it."""

    def matching_row() -> dict[str, Any] | None:
        # Asking Redis is cheap, starting the CLI is not: ask it only when no job is waiting or running.
        if not queues_idle(stack):
            return None
        rows = user_rows(stack, subject)
        assert len(rows) <= 1, f"more than one row for {subject}: {rows}"
        if rows and all(rows[0].get(key) == value for key, value in expected.items()):
            return rows[0]
        return None

    return wait_until(matching_row, timeout=timeout, interval=0.05, what=f"the row of {subject} with {expected}")


def job_ids(stack: Stack) -> set[str]:
    """The ids of every RQ job the stack's Redis knows (queued, running or finished: kept an hour)."""
    with stack.redis() as client:
        keys = [key.decode() for key in client.scan_iter(match="rq:job:*", count=1000)]
    # rq:job:<id> is the job itself; longer keys (rq:job:<id>:…) are its companions.
    return {key.split(":")[2] for key in keys if key.count(":") == 2}


def queues_idle(stack: Stack) -> bool:
    """True when every RQ queue is empty and no job is running (scheduled retries aside)."""
    with stack.redis() as client:
        queues = [key.decode().removeprefix("rq:queue:") for key in client.smembers("rq:queues")]
        return all(client.llen(f"rq:queue:{name}") == 0 and client.zcard(f"rq:wip:{name}") == 0 for name in queues)
