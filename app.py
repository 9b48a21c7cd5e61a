"""The Gatehouse application factory.

`flask --app app …` and `gunicorn 'app:create_app()'` call `create_app`; importing
this module builds nothing, connects nowhere and reads no environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask

import models  # noqa: F401  (registers the tables for Flask-Migrate)
from accounts.jobs import ACCOUNT_JOBS
from audit.jobs import AUDIT_JOBS, AUDIT_PERIODIC_TASKS
from blueprints.account.routes import bp as account_bp
from blueprints.auth.routes import bp as auth_bp
from blueprints.dashboard.routes import bp as dashboard_bp
from blueprints.health.routes import bp as health_bp
from blueprints.home.routes import bp as home_bp
from blueprints.metrics.routes import bp as metrics_bp
from blueprints.profile.routes import bp as profile_bp
from blueprints.sessions.routes import bp as sessions_bp
from clients.downstream import init_downstream
from commands.audit import audit_cli
from commands.jobs import jobs_cli
from commands.users import users_cli
from commands.worker import worker_command
from config import ConfigError, load_settings
from connections import init_connections, session_redis
from devstack.settings_file import running_settings
from errors import register_error_handlers
from extensions import csrf, db, migrate
from jobs.queues import init_queue
from jobs.registry import init_jobs
from logs import init_logging
from metrics.hosts import init_scrape_hosts
from oidc.provider import init_oidc
from proxies import TrustedProxyFix
from security import init_security
from sessions.hooks import init_session_hooks
from sessions.store import init_session_store
from sessions.user import init_current_user
from signin.setup import init_sign_in
from web import init_response_policies


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a Gatehouse app from the environment, with `config` taking precedence."""
    app = Flask(__name__, instance_relative_config=True)
    try:
        app.config.from_mapping(read_settings(app, config))
    except ConfigError as error:
        exit_cli_with(error)
        raise
    init_logging(app)
    init_proxy_fix(app)
    init_scrape_hosts(app)
    init_database(app)
    init_connections(app)
    init_session_store(app, session_redis(app))
    init_queue(app)
    init_jobs(app, [*ACCOUNT_JOBS, *AUDIT_JOBS], AUDIT_PERIODIC_TASKS)
    init_session_hooks(app)
    init_current_user(app)
    init_sign_in(app)
    init_oidc(app)
    init_downstream(app)
    csrf.init_app(app)
    init_response_policies(app)
    register_blueprints(app)
    init_security(app, session_redis(app))
    register_error_handlers(app)
    register_commands(app)
    return app


def read_settings(app: Flask, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The validated settings: the environment's and, for a CLI command beside `make run`, its settings file.

    Only `flask --app app …` commands look for the file (devstack/settings_file.py says when they use it);
    gunicorn and the tests read the environment alone.
    """
    found = None
    if click.get_current_context(silent=True) is not None:
        found = running_settings(os.environ, Path.cwd())
    environ = found.environ if found is not None else None
    notes = found.problems + found.hints if found is not None else []
    try:
        settings = load_settings(environ, overrides=config, instance_path=app.instance_path)
    except ConfigError as error:
        raise ConfigError(error.problems + notes) from None
    if found is not None and found.problems:
        raise ConfigError(found.problems)
    return settings


def exit_cli_with(error: ConfigError) -> None:
    """Under `flask --app app …`, print the settings' problems (no traceback) and exit with 2.

    Elsewhere (gunicorn, tests) this returns and the error propagates as usual. SystemExit, not click's
    own exit: Flask lists the commands for `--help` by loading the app, and prints a traceback for any
    Exception that loading raises (click's exit is one), where SystemExit passes through.
    """
    if click.get_current_context(silent=True) is None:
        return
    click.echo(f"Error: {error}", err=True)
    raise SystemExit(2)


def init_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* from this many proxies (0: none), and only from the peers FORWARDED_ALLOW_IPS names."""
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        trusted = app.config["FORWARDED_ALLOW_IPS"]
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, hops=hops, trusted=trusted)  # type: ignore[method-assign]


def init_database(app: Flask) -> None:
    """Bind SQLAlchemy and Flask-Migrate; pools are bounded and checked before use."""
    # hide_parameters: a failing statement's error (logged, and kept in failed jobs) must not carry
    # users' e-mail addresses, names or bios.
    engine_options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        engine_options |= {"pool_size": app.config["DB_POOL_SIZE"], "max_overflow": app.config["DB_MAX_OVERFLOW"]}
        # An unreachable database fails a connection attempt quickly instead of hanging a job.
        engine_options["connect_args"] = {"connect_timeout": app.config["DB_CONNECT_TIMEOUT"]}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path) + "/migrations")


def register_blueprints(app: Flask) -> None:
    """Mount every URL space."""
    for blueprint in (home_bp, auth_bp, profile_bp, sessions_bp, account_bp, dashboard_bp, health_bp, metrics_bp):
        app.register_blueprint(blueprint)


def register_commands(app: Flask) -> None:
    """Add the `worker`, `jobs`, `users` and `audit` commands to `flask --app app`."""
    app.cli.add_command(worker_command)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
