"""Gunicorn settings for serving Gatehouse in production: `gunicorn -c gunicorn.conf.py 'app:create_app()'`.

Every setting comes from the environment, with defaults that suit one web process on a
small machine behind a TLS-terminating proxy (see docs/production.md):

    GUNICORN_BIND             address to listen on (default 0.0.0.0:$PORT, PORT defaults to 8000)
    WEB_CONCURRENCY           worker processes (default: the number of CPUs, at least 2)
    GUNICORN_THREADS          threads per worker process (default 4)
    GUNICORN_TIMEOUT          seconds a worker may stay silent before it is restarted (default 30)
    GUNICORN_GRACEFUL_TIMEOUT seconds in-flight requests get on shutdown or reload (default 30)
    GUNICORN_KEEPALIVE        seconds to hold an idle keep-alive connection (default 5; keep it
                              above the load balancer's idle timeout)
    GUNICORN_MAX_REQUESTS     recycle a worker after this many requests, 0 = never (default 0)
    FORWARDED_ALLOW_IPS       proxies whose X-Forwarded-Proto gunicorn trusts (default 127.0.0.1,::1)
    GUNICORN_ACCESS_LOG       access log file, "-" for stdout, "" to turn it off (default "-")
    GUNICORN_LOG_LEVEL        error log level (default info)
    GUNICORN_CONTROL_SOCKET   path of gunicorn's control socket; unset = no control socket

Each worker process builds its own app, so its own Redis pool (REDIS_MAX_CONNECTIONS) and
database pool (DB_POOL_SIZE + DB_MAX_OVERFLOW), shared by its GUNICORN_THREADS threads.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    """An integer setting from the environment, with a clear error when it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number (got {raw!r})") from None


bind = [os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", max(2, os.cpu_count() or 1))
# Threads, not more processes: requests mostly wait on Redis, the provider and the API.
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Off by default: recycling rebuilds the app in a new worker (about 0.6 s of CPU each time), which
# bench/pages.py measured as about half of all CPU per page at 2,000 requests (docs/performance.md).
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# Only the proxy in front may say the original request was https (X-Forwarded-Proto).
# Host and client address are rewritten by the app's ProxyFix (PROXY_FIX_HOPS).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The path without its query string: /auth/callback carries the authorization code and
# state, which do not belong in logs. Referer is left out for the same reason.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Gunicorn 25+ opens a control socket at one fixed path per user by default, so two
# servers on one machine would fight over it; opt in by naming a path.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

# Heartbeat files on a RAM disk where there is one (containers often mount /tmp on overlayfs);
# gunicorn creates them with unique names and unlinks them at once.
if os.path.isdir("/dev/shm"):  # noqa: S108
    worker_tmp_dir = "/dev/shm"  # noqa: S108
