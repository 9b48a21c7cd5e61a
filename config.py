"""Settings: a few classes plus environment variables, validated in one place.

Nothing here runs at import. `load_settings` is called by `create_app`, reads the
environment it is given, and raises one `ConfigError` that names every missing or
invalid setting, so a misconfigured deployment fails at start with the whole list.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many

from provider_settings import read_providers
from redis_targets import SCHEMES as REDIS_SCHEMES
from redis_targets import parse_redis_url

ENVIRONMENTS = ("development", "testing", "production")


class ConfigError(RuntimeError):
    """Raised by `create_app` when settings are missing or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Gatehouse is not configured:\n  - " + "\n  - ".join(problems))


class BaseConfig:
    """Defaults shared by every environment."""

    SESSION_COOKIE_HTTPONLY = True
    # Lax, not Strict: the OAuth state lives in the session and must survive the
    # top-level redirect back from the provider.
    SESSION_COOKIE_SAMESITE = "Lax"
    # Never rewrite an unchanged session: the store slides its expiry on read (GETEX).
    SESSION_REFRESH_EACH_REQUEST = False
    SESSION_IDLE_TIMEOUT = 30 * 60
    SESSION_ABSOLUTE_TIMEOUT = 12 * 60 * 60
    # A sign-in in progress (anonymous session holding state, nonce and PKCE verifier).
    ANONYMOUS_SESSION_TTL = 10 * 60
    # Last-seen time and address of a session are written at most this often.
    SESSION_LAST_SEEN_INTERVAL = 60
    # Sessions one user may hold at once; a new sign-in beyond it ends the oldest.
    SESSIONS_PER_USER = 50
    # How long a user's shared state (profile, flags) stays in Redis after their last sign-in.
    USER_STATE_TTL = 30 * 24 * 60 * 60
    # Seconds a profile save may wait for the worker to load the user's saved profile (after Redis lost it).
    PROFILE_LOAD_WAIT = 3.0
    # Seconds before its expiry an access token is refreshed while it still works (one request refreshes, the
    # others go on with the old token). Keep it below the provider's token lifetime, or every request refreshes.
    TOKEN_REFRESH_AHEAD = 60
    OIDC_SCOPES = "openid email profile"
    # What sign-out sends the provider to name the session it ends: the session's ID token
    # (stored beside it, ~600 bytes each), or only our client_id (the provider may ask to confirm).
    LOGOUT_HINT = "id_token"
    # How long values are stored in Redis: "compact" (in 64-byte pieces, tokens in the session's hash), or "whole"
    # (as Gatehouse wrote them before 2026-12: for the first step of a rolling upgrade; docs/production.md).
    SESSION_LAYOUT = "compact"
    # Audit events older than this many days are deleted by the workers (0: kept for ever).
    AUDIT_RETENTION_DAYS = 365
    API_BASE_URL = ""
    # The address users reach Gatehouse at; every absolute URL (redirect_uri, post-logout) is built from it.
    PUBLIC_URL = ""
    API_DASHBOARD_PATH = ""
    # Seconds one outbound call may take in all (connecting, waiting, reading), and the most it may read.
    API_TIMEOUT = 5.0
    OIDC_TIMEOUT = 5.0
    API_MAX_RESPONSE_BYTES = 1024 * 1024
    OIDC_MAX_RESPONSE_BYTES = 1024 * 1024
    REDIS_SOCKET_TIMEOUT = 0.5
    # Acknowledged writes (sign-in, sign-out and revocations, disable, deletion, a saved profile) wait until this
    # many replicas have them (Redis WAIT), at most REDIS_WAIT_TIMEOUT_MS, so a failover cannot undo them; 0 waits
    # for none (one server, or replicas you accept losing the last writes of). Page views never wait.
    REDIS_WAIT_REPLICAS = 0
    REDIS_WAIT_TIMEOUT_MS = 250
    # The same for jobs on the queue's Redis; unset, it follows REDIS_WAIT_REPLICAS (a queue Redis without
    # replicas, beside a replicated session store, needs 0 here).
    QUEUE_REDIS_WAIT_REPLICAS: int | None = None
    # The certificate authorities a rediss… URL's servers are checked against (a PEM file); empty: the system's.
    REDIS_TLS_CA_FILE = ""
    # The Sentinels' own password (REDIS_URL's password is the data nodes'); empty: they have none.
    REDIS_SENTINEL_PASSWORD = ""
    REDIS_MAX_CONNECTIONS = 50
    DB_POOL_SIZE = 5
    DB_MAX_OVERFLOW = 5
    DB_CONNECT_TIMEOUT = 5
    JOB_TIMEOUT = 30
    # Delays before each retry of a failed job: the first is immediate (a killed
    # worker or a blip), then back off for about nine minutes in all.
    JOB_RETRY_INTERVALS = (0, 2, 5, 15, 30, 60, 120, 300)
    # A running job's heartbeat period, and how late it may be before the job counts
    # as abandoned (its worker died) and is retried by another worker's maintenance.
    WORKER_MONITOR_INTERVAL = 5
    WORKER_ABANDON_GRACE = 10
    # How often a worker cleans RQ's registries and re-enqueues the job outbox.
    WORKER_MAINTENANCE_INTERVAL = 15
    # Ready persistence jobs a worker runs together: one work horse, one transaction (jobs/batch.py).
    # Each batch pays a fork, a database connection and RQ's loop once, so in a login storm 500 persists
    # about half as fast again as 100 (docs/performance.md); a quiet queue still gives small batches.
    WORKER_BATCH_SIZE = 500
    PROXY_FIX_HOPS = 0
    # The peers whose forwarded headers are believed (gunicorn's setting, same name): IPs or networks, or "*".
    FORWARDED_ALLOW_IPS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | str = (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    # Client addresses `/metrics` answers (others get a 404): loopback only, unless set.
    METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session does
    # Per client address, counted in Redis (Flask-Limiter notation: "N per minute", "N/hour;M/day").
    LOGIN_RATE_LIMIT = "30 per minute"
    # Sign-in starts from one IPv4 /24 or IPv6 /48, and from everyone together: each keeps ~600 B of
    # anonymous sign-in state for ANONYMOUS_SESSION_TTL, so these cap what that state can cost (rate_limits.py).
    LOGIN_RATE_LIMIT_PER_NETWORK = "300 per minute"
    LOGIN_RATE_LIMIT_TOTAL = "3000 per minute"
    CALLBACK_RATE_LIMIT = "30 per minute"
    # A signed-in user's state-changing requests (revoking sessions, saving the profile, deleting the account).
    USER_ACTION_RATE_LIMIT = "30 per minute"
    MAX_CONTENT_LENGTH = 64 * 1024
    # "text" (readable) or "json" (one object per line, with the request id: logs.py).
    LOG_FORMAT = "text"


class DevelopmentConfig(BaseConfig):
    """`make run` on a laptop: plain http on 127.0.0.1, so the cookie cannot be Secure."""

    SESSION_COOKIE_NAME = "gatehouse_session"
    SESSION_COOKIE_SECURE = False


class TestingConfig(DevelopmentConfig):
    """Unit tests: like development, with Flask's testing switches on."""

    TESTING = True


class ProductionConfig(BaseConfig):
    """Real deployments: Secure cookie with the __Host- prefix (https, no Domain, Path=/)."""

    SESSION_COOKIE_NAME = "__Host-gatehouse_session"
    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


CONFIG_CLASSES = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def seconds_list(raw: str) -> tuple[int, ...]:
    """Read "0,2,5" as (0, 2, 5)."""
    return tuple(int(part) for part in raw.split(",") if part.strip())


def ip_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Read "127.0.0.0/8, ::1" as networks (a bare address is a network of one); ValueError if any is neither."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


# How a bad value is described: "SETTING must be a <this> (got ...)".
_KINDS: dict[Callable[[str], Any], str] = {
    seconds_list: "comma-separated list of whole seconds",
    ip_networks: "comma-separated list of IP addresses or networks (127.0.0.0/8, ::1)",
}

# Setting name -> how to read it from a string. Everything listed here may come
# from the environment; README and .env.example list the same names.
_ENV_SETTINGS: dict[str, Callable[[str], Any]] = {
    "SECRET_KEY": str,
    "DATABASE_URL": str,
    "REDIS_URL": str,
    "QUEUE_REDIS_URL": str,
    "OIDC_ISSUER": str,
    "OIDC_CLIENT_ID": str,
    "OIDC_CLIENT_SECRET": str,
    "OIDC_LABEL": str,
    "OIDC_PROVIDERS": str,
    "OIDC_SCOPES": str,
    "LOGOUT_HINT": str,
    "SESSION_LAYOUT": str,
    "AUDIT_RETENTION_DAYS": int,
    "API_BASE_URL": str,
    "PUBLIC_URL": str,
    "API_DASHBOARD_PATH": str,
    "API_TIMEOUT": float,
    "OIDC_TIMEOUT": float,
    "API_MAX_RESPONSE_BYTES": int,
    "PROFILE_LOAD_WAIT": float,
    "TOKEN_REFRESH_AHEAD": int,
    "OIDC_MAX_RESPONSE_BYTES": int,
    "SESSION_IDLE_TIMEOUT": int,
    "SESSION_ABSOLUTE_TIMEOUT": int,
    "SESSIONS_PER_USER": int,
    "USER_STATE_TTL": int,
    "ANONYMOUS_SESSION_TTL": int,
    "SESSION_LAST_SEEN_INTERVAL": int,
    "REDIS_SOCKET_TIMEOUT": float,
    "REDIS_SENTINEL_PASSWORD": str,
    "REDIS_TLS_CA_FILE": str,
    "REDIS_WAIT_REPLICAS": int,
    "QUEUE_REDIS_WAIT_REPLICAS": int,
    "REDIS_WAIT_TIMEOUT_MS": int,
    "REDIS_MAX_CONNECTIONS": int,
    "DB_POOL_SIZE": int,
    "DB_MAX_OVERFLOW": int,
    "DB_CONNECT_TIMEOUT": int,
    "JOB_TIMEOUT": int,
    "JOB_RETRY_INTERVALS": seconds_list,
    "WORKER_MONITOR_INTERVAL": int,
    "WORKER_ABANDON_GRACE": int,
    "WORKER_MAINTENANCE_INTERVAL": int,
    "WORKER_BATCH_SIZE": int,
    "PROXY_FIX_HOPS": int,
    "FORWARDED_ALLOW_IPS": str,
    "METRICS_ALLOWED_NETWORKS": ip_networks,
    "LOGIN_RATE_LIMIT": str,
    "LOGIN_RATE_LIMIT_PER_NETWORK": str,
    "LOGIN_RATE_LIMIT_TOTAL": str,
    "CALLBACK_RATE_LIMIT": str,
    "USER_ACTION_RATE_LIMIT": str,
    "LOG_FORMAT": str,
}

# The provider settings (OIDC_ISSUER, … or OIDC_PROVIDERS) are checked by provider_settings.read_providers.
_REQUIRED = ("SECRET_KEY", "REDIS_URL")


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    instance_path: str = "instance",
) -> dict[str, Any]:
    """Return the validated settings for one app, or raise `ConfigError` naming every problem."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    problems: list[str] = []

    env_name = str(overrides.pop("GATEHOUSE_ENV", environ.get("GATEHOUSE_ENV", "production")))
    if env_name not in ENVIRONMENTS:
        problems.append(f"GATEHOUSE_ENV must be one of {', '.join(ENVIRONMENTS)} (got {env_name!r})")
        env_name = "production"
    config_class = CONFIG_CLASSES[env_name]
    settings: dict[str, Any] = {key: getattr(config_class, key) for key in dir(config_class) if key.isupper()}
    settings["GATEHOUSE_ENV"] = env_name

    for name, parse in _ENV_SETTINGS.items():
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            settings[name] = parse(raw)
        except ValueError:
            problems.append(f"{name} must be a {_KINDS.get(parse, parse.__name__)} (got {raw!r})")
    settings.update(overrides)
    problems += _read_retry_intervals(settings)
    problems += _read_networks(settings)
    problems += _read_forwarded_allow_ips(settings)

    if not settings.get("DATABASE_URL") and env_name != "production":
        # The embedded default: SQLite in the instance folder, which git ignores.
        settings["DATABASE_URL"] = f"sqlite:///{os.path.join(instance_path, 'gatehouse.db')}"
    if not settings.get("QUEUE_REDIS_URL"):
        settings["QUEUE_REDIS_URL"] = settings.get("REDIS_URL")
    if settings.get("QUEUE_REDIS_WAIT_REPLICAS") is None:
        settings["QUEUE_REDIS_WAIT_REPLICAS"] = settings.get("REDIS_WAIT_REPLICAS")

    problems.extend(_validate(settings))
    # Each provider's settings are named after it (OIDC_<NAME>_ISSUER, …): read them from wherever they came.
    provider_source = {**{name: value for name, value in environ.items() if name.startswith("OIDC_")}, **settings}
    settings["OIDC_PROVIDER_SETTINGS"], provider_problems = read_providers(provider_source)
    problems.extend(provider_problems)
    problems.extend(_metrics_directory_problems(environ))
    if problems:
        raise ConfigError(problems)

    settings["SQLALCHEMY_DATABASE_URI"] = _sqlalchemy_url(settings["DATABASE_URL"])
    if settings.get("PUBLIC_URL"):
        # Requests naming any other host are answered 400 (Flask checks Host against this list).
        settings["PUBLIC_URL"] = settings["PUBLIC_URL"].rstrip("/")
        settings["TRUSTED_HOSTS"] = [urlsplit(settings["PUBLIC_URL"]).hostname]
    settings["PERMANENT_SESSION_LIFETIME"] = settings["SESSION_IDLE_TIMEOUT"]
    return settings


def _read_retry_intervals(settings: dict[str, Any]) -> list[str]:
    """An override may spell JOB_RETRY_INTERVALS as "0,2,5": read it like the environment's."""
    if not isinstance(settings.get("JOB_RETRY_INTERVALS"), str):
        return []
    try:
        settings["JOB_RETRY_INTERVALS"] = seconds_list(settings["JOB_RETRY_INTERVALS"])
    except ValueError:
        settings["JOB_RETRY_INTERVALS"] = BaseConfig.JOB_RETRY_INTERVALS
        return [f"JOB_RETRY_INTERVALS must be a {_KINDS[seconds_list]}"]
    return []


def _metrics_directory_problems(environ: Mapping[str, str]) -> list[str]:
    """PROMETHEUS_MULTIPROC_DIR (prometheus_client reads it itself) must name a directory that exists."""
    directory = environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not os.path.isdir(directory):
        return [f"PROMETHEUS_MULTIPROC_DIR must be an existing directory, where metrics are kept (got {directory!r})"]
    return []


def _read_networks(settings: dict[str, Any]) -> list[str]:
    """An override may spell METRICS_ALLOWED_NETWORKS as "10.0.0.0/8,::1": read it like the environment's."""
    if not isinstance(settings.get("METRICS_ALLOWED_NETWORKS"), str):
        return []
    try:
        settings["METRICS_ALLOWED_NETWORKS"] = ip_networks(settings["METRICS_ALLOWED_NETWORKS"])
    except ValueError:
        settings["METRICS_ALLOWED_NETWORKS"] = BaseConfig.METRICS_ALLOWED_NETWORKS
        return [f"METRICS_ALLOWED_NETWORKS must be a {_KINDS[ip_networks]}"]
    return []


def _read_forwarded_allow_ips(settings: dict[str, Any]) -> list[str]:
    """FORWARDED_ALLOW_IPS as gunicorn spells it ("127.0.0.1,10.0.0.0/8", or "*"), read as networks."""
    raw = settings.get("FORWARDED_ALLOW_IPS")
    if not isinstance(raw, str) or raw.strip() == "*":
        if isinstance(raw, str):
            settings["FORWARDED_ALLOW_IPS"] = "*"
        return []
    try:
        settings["FORWARDED_ALLOW_IPS"] = ip_networks(raw)
    except ValueError:
        settings["FORWARDED_ALLOW_IPS"] = BaseConfig.FORWARDED_ALLOW_IPS
        return [f"FORWARDED_ALLOW_IPS must be a {_KINDS[ip_networks]}, or * for every peer"]
    return []


def _validate(settings: Mapping[str, Any]) -> list[str]:
    """Every problem with the settings, in one list."""
    problems = [f"{name} is required" for name in _REQUIRED if not settings.get(name)]
    if settings["GATEHOUSE_ENV"] == "production":
        problems += _production_problems(settings)
    problems += _url_problems(settings)
    problems += _number_problems(settings)
    problems += _timing_problems(settings)
    problems += _choice_problems(settings)
    problems += _audit_problems(settings)
    return problems


def _audit_problems(settings: Mapping[str, Any]) -> list[str]:
    days = settings.get("AUDIT_RETENTION_DAYS")
    if isinstance(days, int) and not isinstance(days, bool) and days >= 0:
        return []
    return ["AUDIT_RETENTION_DAYS must be a whole number of days, 0 or more (0 keeps events for ever)"]


# Settings that take one of a few words.
_CHOICES = {
    "LOGOUT_HINT": ("id_token", "client_id"),
    "LOG_FORMAT": ("text", "json"),
    "SESSION_LAYOUT": ("compact", "whole"),
}


def _choice_problems(settings: Mapping[str, Any]) -> list[str]:
    return [
        f"{name} must be one of {', '.join(choices)} (got {settings.get(name)!r})"
        for name, choices in _CHOICES.items()
        if settings.get(name) not in choices
    ]


def _production_problems(settings: Mapping[str, Any]) -> list[str]:
    """What production needs beyond the rest: a database, a long secret, https everywhere, a public URL."""
    problems = []
    if not settings.get("DATABASE_URL"):
        problems.append("DATABASE_URL is required in production")
    secret = settings.get("SECRET_KEY") or ""
    if secret and len(secret) < 32:
        problems.append("SECRET_KEY must be at least 32 characters in production")
    if not settings.get("PUBLIC_URL"):
        problems.append("PUBLIC_URL is required in production (the https address users reach Gatehouse at)")
    for name in ("API_BASE_URL", "PUBLIC_URL"):
        value = settings.get(name) or ""
        if value and urlsplit(value).scheme != "https":
            # Bearer tokens and codes would travel in clear.
            problems.append(f"{name} must be an https URL in production")
    return problems


def _url_problems(settings: Mapping[str, Any]) -> list[str]:
    """Each URL setting has a scheme it can be used with."""
    problems = _redis_url_problems(settings)
    for name in ("API_BASE_URL", "PUBLIC_URL"):
        value = settings.get(name)
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            problems.append(f"{name} must be an absolute http(s) URL")
    public = urlsplit(settings.get("PUBLIC_URL") or "")
    if public.path not in ("", "/") or public.query or public.fragment or public.username:
        problems.append("PUBLIC_URL must be a bare origin such as https://gatehouse.example.com (no path)")
    database_url = settings.get("DATABASE_URL")
    if database_url and urlsplit(database_url).scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        problems.append("DATABASE_URL must be a sqlite:// or postgresql:// URL")
    return problems


_REDIS_FORMS = "a redis://, rediss://, unix://, redis+sentinel://, redis+cluster:// (or rediss+ for TLS) URL"


def _redis_url_problems(settings: Mapping[str, Any]) -> list[str]:
    """Each Redis URL parses, and names a kind of Redis its user can run on."""
    problems = []
    ca_file = settings.get("REDIS_TLS_CA_FILE")
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"REDIS_TLS_CA_FILE must name a readable PEM file (got {ca_file!r})")
    for name in ("REDIS_URL", "QUEUE_REDIS_URL"):
        value = settings.get(name)
        if not value:
            continue
        if urlsplit(value).scheme not in REDIS_SCHEMES:
            problems.append(f"{name} must be {_REDIS_FORMS}")
            continue
        try:
            target = parse_redis_url(value)
        except ValueError as error:
            problems.append(f"{name} is not a usable URL: {error}")
            continue
        if target.kind != "cluster":
            continue
        if name == "QUEUE_REDIS_URL":
            # RQ cannot run on a Redis Cluster (rq/rq#732); the queue defaults to REDIS_URL, hence the hint.
            problems.append(
                "QUEUE_REDIS_URL cannot name a Redis Cluster: RQ cannot run on one. "
                "Point it at one Redis server or a Sentinel-watched primary"
            )
    return problems


def _session_timing_problems(settings: Mapping[str, Any]) -> list[str]:
    """A user's state outlives their sessions; the idle expiry's step is shorter than the idle timeout."""
    problems = []
    user_ttl, absolute = settings.get("USER_STATE_TTL"), settings.get("SESSION_ABSOLUTE_TIMEOUT")
    if isinstance(user_ttl, int) and isinstance(absolute, int) and user_ttl < absolute:
        problems.append("USER_STATE_TTL must be at least SESSION_ABSOLUTE_TIMEOUT (a user outlives their sessions)")
    seen, idle = settings.get("SESSION_LAST_SEEN_INTERVAL"), settings.get("SESSION_IDLE_TIMEOUT")
    if isinstance(seen, int) and isinstance(idle, int) and seen >= idle:
        # The idle expiry slides with the last-seen time (sessions/lua/read.lua): an idle session lives on for
        # up to SESSION_IDLE_TIMEOUT + SESSION_LAST_SEEN_INTERVAL, which must stay close to the timeout.
        problems.append("SESSION_LAST_SEEN_INTERVAL must be shorter than SESSION_IDLE_TIMEOUT")
    return problems


def _number_problems(settings: Mapping[str, Any]) -> list[str]:
    """Counts, timeouts, rate limits and retry delays are in range."""
    problems = []
    for name in _POSITIVE_WHOLE:
        if not isinstance(settings.get(name), int) or settings[name] <= 0:
            problems.append(f"{name} must be a positive whole number")
    problems += _session_timing_problems(settings)
    for name in ("REDIS_WAIT_REPLICAS", "QUEUE_REDIS_WAIT_REPLICAS"):
        count = settings.get(name)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10:
            problems.append(f"{name} must be a whole number between 0 and 10")
    replicas = settings.get("REDIS_WAIT_REPLICAS") or settings.get("QUEUE_REDIS_WAIT_REPLICAS")
    wait, socket_timeout = settings.get("REDIS_WAIT_TIMEOUT_MS"), settings.get("REDIS_SOCKET_TIMEOUT")
    if replicas and isinstance(wait, int) and isinstance(socket_timeout, int | float) and wait >= socket_timeout * 1000:
        # WAIT blocks its connection: past the socket timeout the client gives up first, and no answer is read.
        problems.append("REDIS_WAIT_TIMEOUT_MS must be shorter than REDIS_SOCKET_TIMEOUT (in milliseconds)")
    batch = settings.get("WORKER_BATCH_SIZE")
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1000:
        problems.append("WORKER_BATCH_SIZE must be a whole number between 1 and 1000")
    for name in RATE_LIMIT_SETTINGS:
        if not _is_rate_limit(settings.get(name)):
            problems.append(f"{name} must be a rate limit such as '30 per minute'")
    return problems


def _timing_problems(settings: Mapping[str, Any]) -> list[str]:
    """Timeouts, waits and retry delays are in range."""
    problems = []
    for name in ("API_TIMEOUT", "OIDC_TIMEOUT", "REDIS_SOCKET_TIMEOUT"):
        if not isinstance(settings.get(name), int | float) or settings[name] <= 0:
            problems.append(f"{name} must be a positive number of seconds")
    wait = settings.get("PROFILE_LOAD_WAIT")
    if not isinstance(wait, int | float) or isinstance(wait, bool) or not 0 <= wait <= 30:
        problems.append("PROFILE_LOAD_WAIT must be between 0 and 30 seconds")
    ahead = settings.get("TOKEN_REFRESH_AHEAD")
    if not isinstance(ahead, int) or isinstance(ahead, bool) or not 0 <= ahead <= 3600:
        problems.append("TOKEN_REFRESH_AHEAD must be a whole number of seconds between 0 and 3600")
    intervals = settings.get("JOB_RETRY_INTERVALS")
    if not isinstance(intervals, list | tuple) or not 1 <= len(intervals) <= 25:
        problems.append("JOB_RETRY_INTERVALS must list between 1 and 25 retry delays")
    elif not all(isinstance(delay, int) and 0 <= delay <= 24 * 3600 for delay in intervals):
        problems.append("JOB_RETRY_INTERVALS must be whole seconds between 0 and 86400")
    return problems


RATE_LIMIT_SETTINGS = (
    "LOGIN_RATE_LIMIT",
    "LOGIN_RATE_LIMIT_PER_NETWORK",
    "LOGIN_RATE_LIMIT_TOTAL",
    "CALLBACK_RATE_LIMIT",
    "USER_ACTION_RATE_LIMIT",
)

_POSITIVE_WHOLE = (
    "REDIS_WAIT_TIMEOUT_MS",
    "API_MAX_RESPONSE_BYTES",
    "OIDC_MAX_RESPONSE_BYTES",
    "SESSION_IDLE_TIMEOUT",
    "SESSION_ABSOLUTE_TIMEOUT",
    "JOB_TIMEOUT",
    "REDIS_MAX_CONNECTIONS",
    "SESSIONS_PER_USER",
    "USER_STATE_TTL",
    "ANONYMOUS_SESSION_TTL",
    "SESSION_LAST_SEEN_INTERVAL",
    "DB_CONNECT_TIMEOUT",
    "WORKER_MONITOR_INTERVAL",
    "WORKER_ABANDON_GRACE",
    "WORKER_MAINTENANCE_INTERVAL",
)


def _is_rate_limit(value: Any) -> bool:
    """True for a Flask-Limiter limit string ("30 per minute", "5/second;100/hour")."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        return bool(parse_many(value))
    except ValueError:
        return False


def _sqlalchemy_url(database_url: str) -> str:
    """Map the usual postgres:// spellings onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url
