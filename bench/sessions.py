"""What one user's sessions cost in Redis: revoking them all, storing them, and reading one per page.

    .venv/bin/python -m bench.sessions            # or: make bench
    .venv/bin/python -m bench.sessions --memory   # only the bytes per user (a few seconds)

It starts two throwaway redis-servers on free ports (stopped at the end, whatever happens), an
app on each (GATEHOUSE_ENV=testing, SQLite in a temporary folder), and measures:

1. Revoke-all (`sessions.lifecycle.end_sessions(user, "all")`) of one user with 10 sessions,
   among 100 sessions in one Redis and among 100,000 (10,000 users x 10 sessions) in the other:
   commands the script runs, its duration as Redis measures it, Redis CPU time, and wall time.
   The design says O(that user's sessions), so the ratio 100,000 / 100 should be about 1.
   Revokes alternate between the two servers, so a busy moment of a shared machine slows both
   alike instead of skewing the ratio.
2. Redis bytes per signed-in user with 1, 2 and 10 sessions, with the ID token stored (the default)
   and with LOGOUT_HINT=client_id: MEMORY USAGE of each key the user costs (sessions, tokens,
   index, user state, provider-sid lookups) and its encoding, with token sizes a provider really
   gives; and the growth of `used_memory` per session over the 100,000.
3. Round trips to Redis per signed-in page view (GET / and GET /profile through the test client).

It prints a table, then the same figures as one JSON line (for docs/performance.md).
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from redis import Redis

from app import create_app
from bench.runner import benchmark_folder
from devstack.processes import free_port, start_redis, stop
from sessions import keys
from sessions.devices import describe_device
from sessions.lifecycle import end_sessions, start_user_session
from sessions.record_fields import new_session_handle, provider_sid_text, stored_creation_time, stored_provider_sid
from sessions.store import encode_data, session_store
from sessions.token_record import pack_tokens
from tests.support.redis_monitor import recording
from tests.support.session_records import plant_session
from users.schema import Identity, Profile

ISSUER = "https://login.example.com/realms/staff"
SESSIONS_PER_USER = 10
SMALL_TOTAL = 100
LARGE_TOTAL = 100_000
REPETITIONS = 200
PAGE_VIEWS = 50
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
ADDRESS = "203.0.113.7"
# Sizes of what providers hand out: an opaque access or refresh token is 256 random bits,
# an ID token (RS256 JWT with the usual claims) about 800 bytes, a JWT access token about 1,000.
ID_TOKEN_BYTES = 800
JWT_ACCESS_TOKEN_BYTES = 1_000
# Pipelined sign-ins per round trip while filling Redis.
BATCH = 2_000


# The bench's own Redis and app.


@dataclass(frozen=True)
class BenchRedis:
    """One throwaway Redis, an app whose sessions live on it, and a client for the bench's own readings."""

    port: int
    app: Flask
    redis: Redis


@contextmanager
def bench_redis(workdir: Path) -> Iterator[BenchRedis]:
    """A fresh redis-server on a free port and an app on it, for the block; the server always stops."""
    workdir.mkdir()
    port = free_port()
    process = start_redis(port, data_dir=workdir)
    try:
        with Redis(port=port) as redis:
            yield BenchRedis(port, bench_app(port, workdir), redis)
    finally:
        stop([process])


def bench_app(port: int, workdir: Path, **settings: Any) -> Flask:
    """A testing app whose sessions (and queue) live on the bench Redis; `settings` override the bench's."""
    url = f"redis://127.0.0.1:{port}/0"
    return create_app(
        {
            **settings,
            "GATEHOUSE_ENV": "testing",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "REDIS_URL": url,
            "QUEUE_REDIS_URL": url,
            "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": "gatehouse-bench",
            "OIDC_CLIENT_SECRET": "gatehouse-bench-secret",
        }
    )


# What a provider gives at sign-in, at realistic sizes.


def opaque_token() -> str:
    """An opaque token: 256 random bits, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def jwt_like(length: int) -> str:
    """A string shaped like a signed JWT (header.payload.signature) of about `length` characters.

    Each part is base64url of random bytes, as a provider's are (an RS256 signature is 256 bytes:
    342 characters), so it is stored the way a real token is (sessions/token_record.py)."""
    header = "eyJhbGciOiJSUzI1NiIsImtpZCI6InByb3ZpZGVyLWtleS0xIiwidHlwIjoiSldUIn0"
    signature = secrets.token_urlsafe(256)
    payload_bytes = (length - len(header) - len(signature) - 2) * 3 // 4
    return f"{header}.{secrets.token_urlsafe(payload_bytes)}.{signature}"


def provider_tokens(access_token: str | None = None) -> dict[str, Any]:
    """The token response of one sign-in (an opaque access token unless one is given)."""
    return {
        "access_token": access_token or opaque_token(),
        "refresh_token": opaque_token(),
        "expires_at": time.time() + 3600,
        "id_token": jwt_like(ID_TOKEN_BYTES),
    }


def identity(subject: str) -> Identity:
    """Who the provider says `subject` is (a UUID subject, as most providers use)."""
    return Identity(
        issuer=ISSUER,
        subject=str(uuid.uuid5(uuid.NAMESPACE_URL, subject)),
        email=f"{subject}@example.com",
        name=f"Bench {subject.title()}",
    )


def profile(subject: str) -> Profile:
    """A first profile, as sign-in derives it from the provider's claims."""
    return Profile(display_name=f"Bench {subject.title()}", locale="en", timezone="Europe/Paris")


# Creating sessions.


@dataclass(frozen=True)
class SignedIn:
    """One stored session: its user's tag and the random part of its id."""

    user: str
    member: str


def sign_in(app: Flask, subject: str, *, access_token: str | None = None) -> SignedIn:
    """One sign-in through the app's own code path (sessions.lifecycle.start_user_session)."""
    request = {"headers": {"User-Agent": USER_AGENT}, "environ_base": {"REMOTE_ADDR": ADDRESS}}
    with app.test_request_context("/", **request):
        stored = start_user_session(
            identity=identity(subject),
            profile=profile(subject),
            tokens=provider_tokens(access_token),
            data={},
            provider_sid=str(uuid.uuid4()),
            auth_time=int(time.time()),
            issued_at=int(time.time()),
            provider="oidc",
        )
    if stored.user is None or stored.member is None:
        raise RuntimeError("start_user_session returned an anonymous session")
    return SignedIn(stored.user, stored.member)


def sign_in_many(server: BenchRedis, subjects: list[str], sessions_each: int) -> list[SignedIn]:
    """Many sign-ins at once: the app's registered sign_in.lua, with the KEYS/ARGV layout of
    start_user_session, pipelined (one at a time would take a minute for 100,000).
    `check_same_layout` proves the keys match what the app writes."""
    store, config = session_store(server.app), server.app.config
    device = describe_device(USER_AGENT)
    created = []
    client = Redis(port=server.port)
    try:
        pipeline = client.pipeline(transaction=False)
        for subject in subjects:
            who = identity(subject)
            user = keys.user_tag(who.issuer, who.subject)
            for _ in range(sessions_each):
                member, provider_sid, tokens = keys.new_random(), str(uuid.uuid4()), provider_tokens()
                now = stored_creation_time(time.time())
                store.scripts.sign_in(
                    keys=[
                        keys.session_key(user, member),
                        keys.user_key(user),
                        keys.index_key(user),
                        keys.tokens_key(user, member),
                    ],
                    args=[
                        now,
                        store.idle_timeout,
                        store.absolute_timeout,
                        config["USER_STATE_TTL"],
                        config["SESSIONS_PER_USER"],
                        member,
                        encode_data({}),
                        new_session_handle(member, compact=store.scripts.compact),
                        stored_provider_sid(provider_sid, compact=store.scripts.compact),
                        device,
                        ADDRESS,
                        int(now),
                        store.scripts.pack(who),
                        store.scripts.pack(profile(subject)),
                        pack_tokens(tokens),
                        keys.session_key(user, ""),
                        keys.tokens_key(user, ""),
                        store.seen_interval,
                        "oidc",  # the provider's name, as start_user_session passes it
                        "",  # the account's own identity, not a linked one
                    ],
                    client=pipeline,
                )
                store.scripts.provider_session(
                    keys=[keys.provider_session_key(ISSUER, provider_sid)],
                    args=["join", user, int(now), store.absolute_timeout],
                    client=pipeline,
                )
                created.append(SignedIn(user, member))
            if len(pipeline) >= BATCH:
                pipeline.execute()
        pipeline.execute()
    finally:
        # Closed before anyone reads used_memory: its query buffer must not count as session data.
        client.close()
    return created


def stored_layout(redis: Redis, session: SignedIn) -> dict[str, tuple[str, list[bytes], bool]]:
    """The keys one sign-in stored: per key its type, its hash fields and whether it expires."""
    provider_sid = provider_sid_text(redis.hget(keys.session_key(session.user, session.member), "ps") or b"")
    layout = {}
    for role, key in (
        ("session", keys.session_key(session.user, session.member)),
        ("tokens", keys.tokens_key(session.user, session.member)),
        ("user", keys.user_key(session.user)),
        ("index", keys.index_key(session.user)),
        ("provider sid", keys.provider_session_key(ISSUER, provider_sid)),
    ):
        kind = redis.type(key).decode()
        # Fields named after the user (the provider sid lookup's) or the session (its index entry in the user's state)
        # compare by role, not by name.
        named = {session.user.encode(): b"<user>", keys.index_field(session.member).encode(): b"<index>"}
        fields = sorted(named.get(name, name) for name in redis.hkeys(key)) if kind == "hash" else []
        layout[role] = (kind, fields, redis.ttl(key) > 0)
    return layout


def check_same_layout(server: BenchRedis) -> None:
    """Fail unless the pipelined sign-in stores exactly the keys and fields the app's own sign-in does."""
    by_app = stored_layout(server.redis, sign_in(server.app, "layout-app"))
    by_bench = stored_layout(server.redis, sign_in_many(server, ["layout-bench"], 1)[0])
    if by_app != by_bench:
        raise RuntimeError(f"the bench's sign-ins differ from the app's:\n  app:   {by_app}\n  bench: {by_bench}")


def fill_with_other_users(server: BenchRedis, total_sessions: int) -> int:
    """Store other users with 10 sessions each, leaving room for the revoked user's 10; returns how many."""
    count = (total_sessions - SESSIONS_PER_USER) // SESSIONS_PER_USER
    sign_in_many(server, [f"other-{number:05d}" for number in range(count)], SESSIONS_PER_USER)
    return count * SESSIONS_PER_USER


# 1. Revoke-all.


@dataclass(frozen=True)
class ServerCounters:
    """Redis's own counters at one moment: CPU seconds used, and calls and microseconds per command."""

    cpu_seconds: float
    calls: Counter[str]
    usec: Counter[str]

    @classmethod
    def read(cls, redis: Redis) -> ServerCounters:
        info = redis.info("cpu", "commandstats")
        calls, usec = Counter(), Counter()
        for name, stats in info.items():
            if name.startswith("cmdstat_"):
                calls[name.removeprefix("cmdstat_")] = stats["calls"]
                usec[name.removeprefix("cmdstat_")] = stats["usec"]
        return cls(info["used_cpu_user"] + info["used_cpu_sys"], calls, usec)


# Commands a client sends over its connection: everything else counted between two readings ran
# inside the script (INFO is the reading itself).
CONNECTION_COMMANDS = {"info", "evalsha", "eval", "script|load", "script|exists", "ping", "client|setinfo", "hello"}


@dataclass(frozen=True)
class RevokeSample:
    """One revoke-all, measured."""

    commands_in_script: int
    script_us: float
    redis_cpu_us: float
    wall_us: float


def revoke_all_once(server: BenchRedis, subject: str) -> RevokeSample:
    """Sign `subject` in 10 times, then measure only the revoke of all their sessions.

    Redis CPU time is read with INFO just before and just after the revoke; a second pair of
    readings with nothing in between, taken just before, is subtracted, so the readings' own
    cost does not count.
    """
    signed_in = [sign_in(server.app, subject) for _ in range(SESSIONS_PER_USER)]
    user = signed_in[0].user
    idle = ServerCounters.read(server.redis)
    before = ServerCounters.read(server.redis)
    started = time.perf_counter()
    ended = end_sessions(user, "all", app=server.app)
    wall = time.perf_counter() - started
    after = ServerCounters.read(server.redis)
    if ended != SESSIONS_PER_USER:
        raise RuntimeError(f"revoke-all ended {ended} sessions, not {SESSIONS_PER_USER}")
    calls = after.calls - before.calls
    return RevokeSample(
        commands_in_script=sum(n for name, n in calls.items() if name not in CONNECTION_COMMANDS),
        script_us=after.usec["evalsha"] - before.usec["evalsha"],
        redis_cpu_us=((after.cpu_seconds - before.cpu_seconds) - (before.cpu_seconds - idle.cpu_seconds)) * 1e6,
        wall_us=wall * 1e6,
    )


def measure_revoke_all(servers: list[BenchRedis]) -> list[RevokeSample]:
    """REPETITIONS revoke-alls on each server, alternating between them; the median of each figure per server.

    Medians, not means: on a shared machine a few revokes land on a busy moment.
    """
    samples: list[list[RevokeSample]] = [[] for _ in servers]
    for repetition in range(REPETITIONS + 1):
        for server, taken in zip(servers, samples, strict=True):
            sample = revoke_all_once(server, "revoked")
            # The first is a warm-up: it loads end_sessions.lua into that Redis.
            if repetition > 0:
                taken.append(sample)
    return [median_sample(taken) for taken in samples]


REVOKE_FIGURES = tuple(RevokeSample.__dataclass_fields__)


def median_sample(samples: list[RevokeSample]) -> RevokeSample:
    """Each figure's median over `samples`."""
    medians = (statistics.median(getattr(sample, name) for sample in samples) for name in REVOKE_FIGURES)
    return RevokeSample(*(round(median, 1) for median in medians))


# 2. Bytes per signed-in user.

# Sessions per user the memory figures are given for: most users have one or two.
SESSIONS_PER_USER_WEIGHED = (1, 2, 10)
# The keys one user costs, in the order the tables show them.
KEY_ROLES = ("session", "tokens", "index", "user_state", "provider_sid")


@dataclass(frozen=True)
class UserBytes:
    """MEMORY USAGE (SAMPLES 0) of every key one signed-in user costs, summed per kind of key, and their encodings.

    Per user, not per session: the user's state and index are counted whole, once, however many sessions
    share them, because a user who has one session pays for them alone.
    """

    sessions: int
    bytes: dict[str, int]
    encodings: dict[str, str]

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    @property
    def per_session(self) -> float:
        return round(self.total / self.sessions, 1)


def user_keys(redis: Redis, created: list[SignedIn]) -> dict[str, list[str]]:
    """Each kind of key the user's sessions stored (sessions/keys.py), by role; missing keys left out."""
    user = created[0].user
    found: dict[str, list[str]] = {role: [] for role in KEY_ROLES}
    for session in created:
        session_key = keys.session_key(user, session.member)
        found["session"].append(session_key)
        found["tokens"].append(keys.tokens_key(user, session.member))
        provider_sid = redis.hget(session_key, "ps")
        if provider_sid:
            found["provider_sid"].append(keys.provider_session_key(ISSUER, provider_sid_text(provider_sid)))
    found["index"].append(keys.index_key(user))
    found["user_state"].append(keys.user_key(user))
    return {role: [key for key in names if redis.exists(key)] for role, names in found.items()}


def weigh_user(redis: Redis, created: list[SignedIn]) -> UserBytes:
    """What Redis holds for one user's sessions, key by key."""

    def usage(key: str) -> int:
        return redis.memory_usage(key, samples=0) or 0  # SAMPLES 0: every element, not an estimate

    found = user_keys(redis, created)
    encodings = {
        role: "/".join(sorted({redis.object("encoding", key).decode() for key in names})) or "-"
        for role, names in found.items()
    }
    return UserBytes(
        sessions=len(created),
        bytes={role: sum(usage(key) for key in names) for role, names in found.items()},
        encodings=encodings,
    )


def measure_user_bytes(
    app: Flask, redis: Redis, subject: str, sessions: int, access_token: str | None, *, after_page: bool = False
) -> UserBytes:
    """Sign `subject` in `sessions` times through the app and weigh what Redis holds for them.

    With `after_page`, each session has first viewed /profile, as a browser does right after signing in: the page
    stores its CSRF token (and its signed form) in the session's app data, about 200 bytes of msgpack.
    """
    created = [sign_in(app, subject, access_token=access_token) for _ in range(sessions)]
    if after_page:
        for session in created:
            browser = app.test_client()
            browser.set_cookie(app.config["SESSION_COOKIE_NAME"], keys.signed_in_sid(session.user, session.member))
            view(browser, "/profile")
    return weigh_user(redis, created)


def measure_all_user_bytes(server: BenchRedis, client_id_app: Flask) -> dict[str, UserBytes]:
    """The memory table: 1, 2 and 10 sessions per user, with the ID token stored (the default) and without it
    (LOGOUT_HINT=client_id), opaque access tokens; and one JWT access token row."""
    weighed = {}
    for after_page in (False, True):
        for hint, app in (("id_token", server.app), ("client_id", client_id_app)):
            for count in SESSIONS_PER_USER_WEIGHED:
                label = f"{hint}, {count} session{'s' if count > 1 else ''}{', after a page' if after_page else ''}"
                subject = f"weighed-{hint}-{count}-{'page' if after_page else 'signin'}"
                weighed[label] = measure_user_bytes(app, server.redis, subject, count, None, after_page=after_page)
    jwt = jwt_like(JWT_ACCESS_TOKEN_BYTES)
    weighed["id_token, 1 session, JWT access token"] = measure_user_bytes(
        server.app, server.redis, "weighed-jwt-1", 1, jwt
    )
    return weighed


# 3. Round trips per page.


@dataclass(frozen=True)
class PageCost:
    """Redis work per view of one page by a signed-in browser."""

    round_trips: float
    commands_in_scripts: float
    commands_sent: str


def measure_page(server: BenchRedis, path: str) -> PageCost:
    """View `path` PAGE_VIEWS times as a signed-in browser, recording what Redis executes."""
    app = server.app
    first_profile = {"display_name": "Bench Reader", "locale": "en", "timezone": "UTC", "website": None, "bio": None}
    sid = plant_session(app, ISSUER, f"reader{path}", {**first_profile, "version": 0})
    browser = app.test_client()
    browser.set_cookie(app.config["SESSION_COOKIE_NAME"], sid)
    # Warm-up: the first views load the read script into Redis and may store a CSRF token.
    for _ in range(3):
        view(browser, path)
    with recording(server.port) as recorded:
        for _ in range(PAGE_VIEWS):
            view(browser, path)
    names = Counter(recorded.sent_names())
    return PageCost(
        round_trips=len(recorded.sent) / PAGE_VIEWS,
        commands_in_scripts=len(recorded.scripted) / PAGE_VIEWS,
        commands_sent=", ".join(f"{name} x{count / PAGE_VIEWS:g}" for name, count in sorted(names.items())),
    )


def view(browser: Any, path: str) -> None:
    """GET a page; anything but a 200 means the bench is not measuring a signed-in page."""
    response = browser.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}, not 200")


# Running it all.


def run(workdir: Path) -> dict[str, Any]:
    """Every measurement: pages and bytes on an empty Redis, then revokes among 100 and 100,000 sessions."""
    with bench_redis(workdir / "small") as small, bench_redis(workdir / "large") as large:
        check_same_layout(small)
        pages = {path: measure_page(small, path) for path in ("/", "/profile")}
        # A second app on the same Redis that stores no ID token: the provider settings are read when the app
        # is built, so changing the first app's config afterwards would not change what it stores.
        client_id_app = bench_app(small.port, workdir / "small", LOGOUT_HINT="client_id")
        bytes_per_user = measure_all_user_bytes(small, client_id_app)
        # From here on each Redis holds only the sessions its figures count.
        small.redis.flushall()
        fill_with_other_users(small, SMALL_TOTAL)
        memory_before = large.redis.info("memory")["used_memory"]
        added = fill_with_other_users(large, LARGE_TOTAL)
        memory_after = large.redis.info("memory")["used_memory"]
        for server, total in ((small, SMALL_TOTAL), (large, LARGE_TOTAL)):
            others = len(server.redis.keys(keys.session_key("*", "*")))
            if others != total - SESSIONS_PER_USER:
                raise RuntimeError(f"Redis holds {others} other sessions, not {total - SESSIONS_PER_USER}")
        revoke_small, revoke_large = measure_revoke_all([small, large])
    return {
        "revoke_all": {
            str(SMALL_TOTAL): asdict(revoke_small),
            str(LARGE_TOTAL): asdict(revoke_large),
            "ratio": {
                name: round(getattr(revoke_large, name) / getattr(revoke_small, name), 2) for name in REVOKE_FIGURES
            },
        },
        "bytes_per_user": {
            label: {**asdict(weighed), "total": weighed.total, "per_session": weighed.per_session}
            for label, weighed in bytes_per_user.items()
        },
        "used_memory_per_session": round((memory_after - memory_before) / added),
        "pages": {path: asdict(cost) for path, cost in pages.items()},
    }


def run_memory(workdir: Path) -> dict[str, Any]:
    """Only the bytes per user, on one throwaway Redis."""
    with bench_redis(workdir / "small") as small:
        check_same_layout(small)
        client_id_app = bench_app(small.port, workdir / "small", LOGOUT_HINT="client_id")
        weighed = measure_all_user_bytes(small, client_id_app)
    return {
        label: {**asdict(user), "total": user.total, "per_session": user.per_session} for label, user in weighed.items()
    }


def print_memory(bytes_per_user: dict[str, Any]) -> None:
    """The bytes-per-user table."""
    print("Redis bytes per signed-in user, all their keys (MEMORY USAGE SAMPLES 0; opaque access and refresh")
    print("tokens 43 chars, ID token 800 bytes, a provider sid per session; LOGOUT_HINT=id_token or client_id;")
    print("'after a page': each session has viewed /profile, which keeps its CSRF token in the session)")
    headings = "".join(f"{role.replace('_', ' '):>13}" for role in KEY_ROLES)
    print(f"  {'':50}{headings}{'total':>8}{'/session':>10}")
    for label, weighed in bytes_per_user.items():
        cells = "".join(f"{weighed['bytes'][role]:>13}" for role in KEY_ROLES)
        print(f"  {label:50}{cells}{weighed['total']:>8}{weighed['per_session']:>10.0f}")
    print("  encodings (OBJECT ENCODING):")
    for label, weighed in bytes_per_user.items():
        print(f"  {label:50}  " + ", ".join(f"{role} {encoding}" for role, encoding in weighed["encodings"].items()))


def print_report(figures: dict[str, Any]) -> None:
    """The figures as aligned tables, then as one JSON line."""
    revoke = figures["revoke_all"]
    small, large, ratio = revoke[str(SMALL_TOTAL)], revoke[str(LARGE_TOTAL)], revoke["ratio"]
    print(f"Revoke all sessions of one user with {SESSIONS_PER_USER} sessions (median of {REPETITIONS})")
    print(f"  {'':34} {'among 100':>12} {'among 100,000':>14} {'ratio':>7}")
    rows = (
        ("commands run inside the script", "commands_in_script", "{:.0f}"),
        ("script duration in Redis (µs)", "script_us", "{:.1f}"),
        ("Redis CPU, user+sys (µs)", "redis_cpu_us", "{:.1f}"),
        ("wall time, end_sessions() (µs)", "wall_us", "{:.1f}"),
    )
    for label, name, shape in rows:
        print(f"  {label:34} {shape.format(small[name]):>12} {shape.format(large[name]):>14} {ratio[name]:>7.2f}")

    print()
    print_memory(figures["bytes_per_user"])
    print(f"  used_memory growth per session, over {LARGE_TOTAL:,} sessions: {figures['used_memory_per_session']:.0f}")

    print(f"\nRedis per signed-in page view ({PAGE_VIEWS} views each)")
    print(f"  {'page':10} {'round trips':>12} {'commands in scripts':>20}  commands sent")
    for path, cost in figures["pages"].items():
        line = f"  {path:10} {cost['round_trips']:>12.2f} {cost['commands_in_scripts']:>20.2f}  {cost['commands_sent']}"
        print(line)
    print("\n" + json.dumps({"bench": "sessions", **figures}, ensure_ascii=False))


def main() -> None:
    """Run the benchmark on two throwaway Redis servers and print its figures."""
    with benchmark_folder() as folder:
        if "--memory" in sys.argv[1:]:
            bytes_per_user = run_memory(folder)
            print_memory(bytes_per_user)
            print("\n" + json.dumps({"bench": "sessions", "bytes_per_user": bytes_per_user}, ensure_ascii=False))
        else:
            print_report(run(folder))


if __name__ == "__main__":
    main()
