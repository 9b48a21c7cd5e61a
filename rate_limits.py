"""Rate limits (Flask-Limiter), counted in the session store's Redis so every web process shares them.

- Sign-in starts (/login): per client address (per /64 for IPv6, where one host holds a whole network),
  per wider network (IPv4 /24, IPv6 /48), and in total. Each start keeps about 600 bytes of anonymous
  sign-in state for ANONYMOUS_SESSION_TTL; the wider and total caps bound what that state can cost,
  whoever sends the starts. Past a cap the visitor gets the 429 page; nothing else is touched.
- Callbacks (/auth/callback): per client address, checked before any code is redeemed.
- A signed-in user's state-changing requests (revoking sessions, saving the profile, deleting the
  account): per user, so one session cannot flood the audit trail or the queue.

One Limiter per app: Flask-Limiter keeps its storage on the Limiter object, so a shared one would mix
the apps of one process.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis import Redis

import limits_storage  # noqa: F401  (registers the gatehouse+redis:// storage with `limits`)
from sessions.user import current_session
from web import AppHooks

_LIMITER = "gatehouse.limiter"


def client_network() -> str:
    """Who a rate limit counts: the client's IPv4 address, or its IPv6 /64 (one host usually owns a whole /64)."""
    return _network(get_remote_address(), v4=32, v6=64)


def wider_network() -> str:
    """The client's IPv4 /24 or IPv6 /48: what one customer of a hosting provider often holds."""
    return _network(get_remote_address(), v4=24, v6=48)


def everyone() -> str:
    """One count for every client: a cap on the total."""
    return "all"


def signed_in_user() -> str:
    """The signed-in user's opaque id (their every session counts together); else the client's network."""
    stored = current_session()
    return f"user:{stored.user}" if stored.signed_in and stored.user else client_network()


def _network(address: str, *, v4: int, v6: int) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        else:
            return str(ipaddress.ip_network(f"{parsed}/{v6}", strict=False))
    return str(ipaddress.ip_network(f"{parsed}/{v4}", strict=False)) if v4 < 32 else str(parsed)


@dataclass(frozen=True)
class RateLimit:
    """One limit: the endpoints it guards, the setting holding it, whom it counts, and which methods."""

    endpoints: tuple[str, ...]
    setting: str
    key: Callable[[], str]
    methods: tuple[str, ...] | None = None


# Where sign-ins start (/login, /login/<name>) and finish (each provider's callback): each limit counts them together.
SIGN_IN_STARTS = ("auth.login", "auth.login_with")
CALLBACKS = ("auth.callback", "auth.provider_callback")
LIMITS = (
    RateLimit(SIGN_IN_STARTS, "LOGIN_RATE_LIMIT", client_network),
    RateLimit(SIGN_IN_STARTS, "LOGIN_RATE_LIMIT_PER_NETWORK", wider_network),
    RateLimit(SIGN_IN_STARTS, "LOGIN_RATE_LIMIT_TOTAL", everyone),
    RateLimit(CALLBACKS, "CALLBACK_RATE_LIMIT", client_network),
    RateLimit(
        (
            "sessions.revoke",
            "sessions.revoke_others",
            "profile.edit",
            "account.delete",
            "account.link",
            "account.unlink_identity",
        ),
        "USER_ACTION_RATE_LIMIT",
        signed_in_user,
        methods=("POST",),
    ),
)
# The endpoints whose answers carry the limit's headers (X-RateLimit-*, and Retry-After on a 429). Not the
# signed-in actions: their 503 (Redis away, a write no replica confirmed) keeps its own Retry-After.
LIMIT_HEADER_ENDPOINTS = frozenset(SIGN_IN_STARTS + CALLBACKS)


def init_rate_limits(app: Flask, redis: Redis) -> Limiter:
    """Put every limit of LIMITS on its endpoints, counting in the app's Redis (through its client `redis`)."""
    limiter = Limiter(
        client_network,
        # limits_storage.py: the counts live on the session store's own client, whatever its topology.
        # Passed to the storage's constructor as keyword arguments; Flask-Limiter types them as str | int only.
        storage_uri="gatehouse+redis://",
        storage_options={"client": redis},  # type: ignore[dict-item]
        key_prefix="gatehouse-limits",
        strategy="moving-window",
        headers_enabled=True,
    )
    hooks = AppHooks.of(app)
    limiter.init_app(app)
    added = hooks.added_since(app)
    # Flask-Limiter hooks every request of the app: a before_request check for app-wide limits,
    # an after_request that adds the X-RateLimit-*/Retry-After headers of the limit the view
    # checked, and a teardown that resets its per-request state. Gatehouse has no app-wide
    # limits (only the decorated views are limited, and their decorator checks them itself),
    # so the check goes, and the other two run on the limited endpoints' responses only.
    added.remove_from(app)
    app.after_request(lambda response: added.finish(response, LIMIT_HEADER_ENDPOINTS))
    for limit in LIMITS:
        decorate = limiter.limit(
            app.config[limit.setting],
            key_func=limit.key,
            methods=list(limit.methods) if limit.methods else None,
            scope=limit.setting,
        )
        for endpoint in limit.endpoints:
            # The decorator keeps the view's type; mypy infers it from Flask's union of sync and async
            # views as one callable returning either, which is not a member of that union.
            app.view_functions[endpoint] = decorate(app.view_functions[endpoint])  # type: ignore[assignment]
    app.extensions[_LIMITER] = limiter
    return limiter
