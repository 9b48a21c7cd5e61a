"""What a signed-in user costs on a real Redis: the keys' encodings (docs/performance.md, "Redis memory per user").

fakeredis has no encodings, so the unit tests (tests/unit/sessions/test_long_fields.py) cannot see whether a
hash stays in Redis's compact listpack encoding; these tests sign users in through the app's own code on a real
redis-server and ask Redis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, request
from redis import Redis

from app import create_app
from devstack.processes import start_redis, stop
from sessions import keys
from sessions.lifecycle import start_user_session
from sessions.long_fields import piece_fields
from sessions.store import StoredSession, session_store
from tests.support.ports import free_port
from users.schema import Identity, Profile, encode

pytestmark = pytest.mark.integration

ISSUER = "https://login.example.com/realms/staff"
PICTURE = "https://lh3.googleusercontent.example/a/ACg8ocJ" + "x" * 60


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One real redis-server (default settings: hash-max-listpack-value 64) for this module."""
    port = free_port()
    process = start_redis(port, data_dir=tmp_path_factory.mktemp("redis-memory"))
    try:
        yield port
    finally:
        stop([process])


@pytest.fixture(scope="module")
def app(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    url = f"redis://127.0.0.1:{redis_port}/0"
    return create_app(
        {
            "GATEHOUSE_ENV": "testing",
            "SECRET_KEY": "memory-layout-secret-key-that-is-long-enough",
            "REDIS_URL": url,
            "QUEUE_REDIS_URL": url,
            "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('db') / 'gatehouse.db'}",
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": "gatehouse-memory",
            "OIDC_CLIENT_SECRET": "gatehouse-memory-secret",
        }
    )


@pytest.fixture
def redis(redis_port: int) -> Iterator[Redis]:
    with Redis(port=redis_port) as client:
        yield client


def identity(subject: str) -> Identity:
    return Identity(
        issuer=ISSUER, subject=subject, email=f"{subject}@example.com", name="Alice Liddell", picture=PICTURE
    )


def profile() -> Profile:
    return Profile(display_name="Alice Liddell", locale="en", timezone="Europe/Paris", bio="Down the rabbit hole.")


def sign_in(app: Flask, subject: str, id_token: str | None = None) -> StoredSession:
    """One sign-in through sessions.lifecycle.start_user_session, as the callback makes it."""
    with app.test_request_context("/", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}):
        return start_user_session(
            identity=identity(subject),
            profile=profile(),
            tokens={
                "access_token": "a" * 43,
                "refresh_token": "r" * 43,
                "expires_at": time.time() + 3600,
                "id_token": id_token,
            },
            data={},
            provider_sid=str(uuid.uuid4()),
            auth_time=int(time.time()),
            issued_at=int(time.time()),
            provider="oidc",
        )


def page_view(app: Flask, stored: StoredSession) -> StoredSession:
    """The session as a page view reads it (read.lua)."""
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={stored.sid}"
    with app.test_request_context("/", headers={"Cookie": cookie}):
        return session_store(app).open_session(app, request)


def encoding(redis: Redis, key: str) -> bytes:
    found = redis.object("encoding", key)
    assert isinstance(found, bytes)
    return found


def test_a_signed_in_users_state_and_session_stay_listpacks(app: Flask, redis: Redis) -> None:
    subject = f"user-{uuid.uuid4().hex[:12]}"
    stored = sign_in(app, subject)
    assert stored.user is not None

    assert len(encode(identity(subject))) > 64  # the identity alone would make the hash a hashtable
    assert encoding(redis, keys.user_key(stored.user)) == b"listpack"
    assert encoding(redis, keys.session_key(stored.user, stored.member or "")) == b"listpack"
    page = page_view(app, stored)
    assert page.signed_in and page.identity == identity(subject) and page.profile == profile()


def test_a_session_with_a_csrf_token_and_an_id_token_stays_one_listpack(app: Flask, redis: Redis) -> None:
    subject = f"user-{uuid.uuid4().hex[:12]}"
    stored = sign_in(app, subject, id_token="h" * 40 + "." + "p" * 400 + "." + "s" * 342)
    assert stored.user is not None and stored.member is not None
    session_key = keys.session_key(stored.user, stored.member)
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={stored.sid}"
    with app.test_request_context("/", headers={"Cookie": cookie}):
        page = session_store(app).open_session(app, request)
        page["csrf_token"] = "c" * 40  # what Flask-WTF keeps in it after the first page with a form
        page["_csrf_signed"] = ["c" * 40, "s" * 80]
        assert session_store(app)._write(page, page.version or "") is not None

    assert encoding(redis, session_key) == b"listpack"
    assert not redis.exists(keys.tokens_key(stored.user, stored.member))  # the tokens are in the session's hash
    assert page_view(app, stored)["_csrf_signed"] == ["c" * 40, "s" * 80]


def test_a_state_stored_whole_before_the_upgrade_reads_and_is_made_compact_at_the_next_sign_in(
    app: Flask, redis: Redis
) -> None:
    subject = f"user-{uuid.uuid4().hex[:12]}"
    first = sign_in(app, subject)
    assert first.user is not None
    state = keys.user_key(first.user)
    # As Gatehouse wrote it before 2026-12: the identity in one field, so Redis makes the hash a hashtable.
    redis.hdel(state, *piece_fields("i"), *piece_fields("p"))
    old_identity, old_profile = encode(identity(subject), compact=False), encode(profile(), compact=False)
    redis.hset(state, mapping={"i": old_identity, "p": old_profile})
    assert encoding(redis, state) == b"hashtable"

    assert page_view(app, first).identity == identity(subject)  # an old record signs no one out
    second = sign_in(app, subject)

    assert encoding(redis, state) == b"listpack"
    assert redis.ttl(state) > 0
    for stored in (first, second):
        page = page_view(app, stored)
        assert page.signed_in and page.identity == identity(subject) and page.profile == profile()
