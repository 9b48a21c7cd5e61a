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
    PROMETHEUS_MULTIPROC_DIR  where every process keeps its metric samples for /metrics (default: a
                              private directory, removed on exit; set it to share one with RQ workers)
    LOG_FORMAT                json: gunicorn's own log lines as JSON, like the app's (default text)

Each worker process builds its own app, so its own Redis pool (REDIS_MAX_CONNECTIONS) and
database pool (DB_POOL_SIZE + DB_MAX_OVERFLOW), shared by its GUNICORN_THREADS threads.
They are validated by server_settings.py, which names every bad value at start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from typing import Any

from config import ConfigError
from logs import gunicorn_logger
from server_settings import load_server_settings

try:
    _server = load_server_settings()
except ConfigError as error:
    raise SystemExit(str(error)) from None

bind = [_server.bind]
workers = _server.workers
# Threads, not more processes: requests mostly wait on Redis, the provider and the API.
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
keepalive = _server.keepalive
# Off by default: recycling rebuilds the app in a new worker (about 0.6 s of CPU each time), which
# bench/pages.py measured as about half of all CPU per page at 2,000 requests (docs/performance.md).
max_requests = _server.max_requests
max_requests_jitter = max_requests // 10

# Only the proxy in front may say the original request was https (X-Forwarded-Proto).
# Host and client address are rewritten by the app's ProxyFix (PROXY_FIX_HOPS).
forwarded_allow_ips = _server.forwarded_allow_ips

accesslog = _server.access_log
# The path without its query string: /auth/callback carries the authorization code and
# state, which do not belong in logs. Referer is left out for the same reason.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = _server.log_level

# Every value of an access line is escaped (a path with CR LF cannot write a forged line). LOG_FORMAT=json
# (the app's setting): gunicorn's error and access lines become JSON too, and each access line carries
# the request id the app answered with (logs.py). The app validates the value.
logger_class = gunicorn_logger(json_lines=_server.json_logs)

# Gunicorn 25+ opens a control socket at one fixed path per user by default, so two
# servers on one machine would fight over it; opt in by naming a path.
control_socket_disable = _server.control_socket is None
if _server.control_socket is not None:
    control_socket = _server.control_socket

# Heartbeat files on a RAM disk where there is one (containers often mount /tmp on overlayfs);
# gunicorn creates them with unique names and unlinks them at once.
if os.path.isdir("/dev/shm"):  # noqa: S108
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# Metrics (docs/production.md, "Metrics"): in multiprocess mode every process writes its samples to
# PROMETHEUS_MULTIPROC_DIR and /metrics adds up the files there. prometheus_client picks its storage
# once, when first imported, and forked workers inherit that choice, so the master sets the
# directory up here, before anything imports the library, and only the workers load the app.
_SAMPLE_FILE = re.compile(r"_(\d+)(?:-horse)?\.db$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_processes_files(directory: str) -> list[str]:
    """Delete the sample files of processes that no longer run (an RQ worker's live files stay)."""
    removed = []
    for path in glob.glob(os.path.join(directory, "*.db")):
        match = _SAMPLE_FILE.search(os.path.basename(path))
        if match is None or not _process_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            removed.append(path)
    return removed


def on_starting(server: Any) -> None:
    """Ready PROMETHEUS_MULTIPROC_DIR: a private one when unset; files of dead processes removed."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Still one view of every gunicorn worker; RQ workers join only through a directory set for both.
        ram = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  (the files are mmapped)
        private = tempfile.mkdtemp(prefix="gatehouse-metrics-", dir=ram)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["GATEHOUSE_METRICS_PRIVATE_DIR"] = private
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    remove_dead_processes_files(directory)


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: prometheus_client's bookkeeping for it (its live gauges end with it)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the private metrics directory, if on_starting made one."""
    private = os.environ.pop("GATEHOUSE_METRICS_PRIVATE_DIR", "")
    if private:
        shutil.rmtree(private, ignore_errors=True)
