"""Redis URLs: one server, a Sentinel-watched primary, a Cluster; and what the settings accept of them."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, load_settings
from redis_targets import RedisTarget, parse_redis_url

REQUIRED = {
    "GATEHOUSE_ENV": "testing",
    "SECRET_KEY": "redis-targets-secret-key-0123456789",
    "OIDC_ISSUER": "http://127.0.0.1:1",
    "OIDC_CLIENT_ID": "gatehouse",
    "OIDC_CLIENT_SECRET": "secret",
}


def settings(**redis: Any) -> dict[str, Any]:
    return load_settings({}, overrides={**REQUIRED, **redis})


def test_a_sentinel_url_names_its_sentinels_service_database_and_the_data_nodes_credentials() -> None:
    target = parse_redis_url("rediss+sentinel://app:s%3Acret@10.0.0.1:26379,sentinel-2:26380/gatehouse/3")
    assert target == RedisTarget(
        kind="sentinel",
        url="rediss+sentinel://app:s%3Acret@10.0.0.1:26379,sentinel-2:26380/gatehouse/3",
        tls=True,
        hosts=(("10.0.0.1", 26379), ("sentinel-2", 26380)),
        service="gatehouse",
        db=3,
        username="app",
        password="s:cret",
    )


def test_a_cluster_url_names_its_nodes() -> None:
    target = parse_redis_url("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001")
    assert (target.kind, target.hosts, target.password, target.tls) == (
        "cluster",
        (("127.0.0.1", 7000), ("127.0.0.1", 7001)),
        "pw",
        False,
    )


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:1", "unix:///run/redis.sock?db=2"])
def test_one_server_urls_are_passed_to_redis_py_as_they_are(url: str) -> None:
    assert parse_redis_url(url) == RedisTarget(kind="standalone", url=url, tls=url.startswith("rediss"))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://127.0.0.1:26379", "ends with /SERVICE"),
        ("redis+sentinel://127.0.0.1:26379/a/b/c", "ends with /SERVICE"),
        ("redis+sentinel://127.0.0.1:26379/gatehouse/x", "not a number"),
        ("redis+sentinel://127.0.0.1/gatehouse", "is not host:port"),
        ("redis+sentinel://127.0.0.1:99999/gatehouse", "is not host:port"),
        ("redis+sentinel://127.0.0.1:1,,127.0.0.1:2/gatehouse", "an empty address"),
        ("redis+cluster://127.0.0.1:7000/0", "no path"),
        ("memcached://127.0.0.1:11211", "unknown scheme"),
    ],
)
def test_a_malformed_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_redis_url(url)


def test_the_session_store_may_run_on_a_cluster_with_the_queue_elsewhere() -> None:
    loaded = settings(REDIS_URL="rediss+cluster://127.0.0.1:7000,127.0.0.1:7001", QUEUE_REDIS_URL="redis://q:6379")
    assert (loaded["REDIS_URL"], loaded["QUEUE_REDIS_URL"]) == (
        "rediss+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "redis://q:6379",
    )


def test_the_queue_waits_for_as_many_replicas_as_the_session_store_unless_told_otherwise() -> None:
    assert settings(REDIS_URL="redis://h:1", REDIS_WAIT_REPLICAS=1)["QUEUE_REDIS_WAIT_REPLICAS"] == 1
    own = settings(
        REDIS_URL="redis+cluster://h:7000",
        QUEUE_REDIS_URL="redis://q:1",
        REDIS_WAIT_REPLICAS=1,
        QUEUE_REDIS_WAIT_REPLICAS=0,
    )
    assert (own["REDIS_WAIT_REPLICAS"], own["QUEUE_REDIS_WAIT_REPLICAS"]) == (1, 0)


def test_the_session_store_and_the_queue_may_run_on_sentinel() -> None:
    url = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/gatehouse"
    loaded = settings(REDIS_URL=url, REDIS_SENTINEL_PASSWORD="sentinel-only")
    assert (loaded["REDIS_URL"], loaded["QUEUE_REDIS_URL"], loaded["REDIS_SENTINEL_PASSWORD"]) == (
        url,
        url,
        "sentinel-only",
    )


@pytest.mark.parametrize(
    ("redis", "problem"),
    [
        (
            {"REDIS_URL": "redis://h:1", "QUEUE_REDIS_URL": "redis+cluster://h:7000"},
            "QUEUE_REDIS_URL cannot name a Redis Cluster: RQ cannot run on one",
        ),
        # The queue follows REDIS_URL unless set: a Cluster there needs a queue Redis of its own.
        ({"REDIS_URL": "redis+cluster://h:7000"}, "QUEUE_REDIS_URL cannot name a Redis Cluster"),
        (
            {"REDIS_URL": "redis://h:1", "REDIS_WAIT_REPLICAS": 1, "QUEUE_REDIS_WAIT_REPLICAS": 11},
            "QUEUE_REDIS_WAIT_REPLICAS must be a whole number between 0 and 10",
        ),
        (
            {"REDIS_URL": "redis://h:1", "REDIS_WAIT_REPLICAS": 1, "REDIS_WAIT_TIMEOUT_MS": 500},
            "REDIS_WAIT_TIMEOUT_MS must be shorter than REDIS_SOCKET_TIMEOUT",
        ),
        ({"REDIS_URL": "bad value"}, "REDIS_URL must be a redis://, rediss://, unix://, redis+sentinel://"),
        ({"REDIS_URL": "redis+sentinel://h/gatehouse"}, "REDIS_URL is not a usable URL: 'h' is not host:port"),
        ({"REDIS_URL": "redis://h:1", "REDIS_WAIT_REPLICAS": -1}, "REDIS_WAIT_REPLICAS must be a whole number"),
        ({"REDIS_URL": "redis://h:1", "REDIS_WAIT_TIMEOUT_MS": 0}, "REDIS_WAIT_TIMEOUT_MS must be a positive"),
    ],
)
def test_what_a_setting_cannot_run_on_is_refused_with_its_reason(redis: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**redis)
    assert any(message.startswith(problem) for message in raised.value.problems), raised.value.problems
