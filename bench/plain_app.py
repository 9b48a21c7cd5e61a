"""Plain Flask serving Gatehouse's signed-in home page with no session or auth work (bench/pages.py's B).

    gunicorn -c gunicorn.conf.py 'bench.plain_app:create_app()'

It renders Gatehouse's own templates (templates/base.html and home/index.html) for a fixed
reader, so the body is byte for byte what Gatehouse serves that reader: the same Jinja work,
the same url_for calls. What it leaves out is everything around the page: no session store,
no CSRF token signing (csrf_token() returns BENCH_CSRF_TOKEN, the token Gatehouse served, so
even the bytes match), no rate limiter, no security headers. bench/pages.py checks the bytes.

With BENCH_FLOOR=1 (bench/pages.py's F) it also does the two things every Gatehouse page must
do and no code change can remove: the one Redis round trip (sessions/lua/read.lua on the
session the cookie names, exactly as Gatehouse calls it, its reply left undecoded) and the
security headers (the same values, plus Cache-Control and Vary). F is the floor under A.

typical_app.py reuses `READER`, `Reader` and `add_page_routes`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Reader:
    """The signed-in user the bench plants, with what Gatehouse's templates read of `current_user`."""

    subject: str
    display_name: str
    locale: str = "en"
    timezone: str = "UTC"
    email: str | None = None
    is_authenticated: bool = True
    # Flask-Login's side of the protocol (typical_app.py).
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.subject


# The one reader every server shows: bench/pages.py plants a Gatehouse session for them.
READER = Reader(subject="bench-reader", display_name="Bench Reader")


def add_page_routes(app: Flask, views: Mapping[str, Callable[[], Any]] | None = None) -> None:
    """Gatehouse's endpoint names and paths, so its templates' url_for calls give the same URLs.

    Only "/" is served unless `views` ({"auth.login": view}, bench/typical_signin_app.py) serves more;
    the others exist to be linked to.
    """
    views = views or {}

    def unused() -> str:
        return ""

    pages = {
        "home": [("/", "index", lambda: render_template("home/index.html"), ["GET"])],
        "auth": [("/login", "login", unused, ["GET"]), ("/logout", "logout", unused, ["POST"])],
        "profile": [("/profile", "edit", unused, ["GET"])],
        "sessions": [("/sessions", "index", unused, ["GET"])],
        "dashboard": [("/dashboard", "show", unused, ["GET"])],
    }
    for name, rules in pages.items():
        blueprint = Blueprint(name, __name__)
        for rule, endpoint, view, methods in rules:
            blueprint.add_url_rule(rule, endpoint, views.get(f"{name}.{endpoint}", view), methods=methods)
        app.register_blueprint(blueprint)


def create_app() -> Flask:
    """The plain app: Gatehouse's templates and static folder, a fixed reader, nothing else."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    add_page_routes(app)
    token = os.environ.get("BENCH_CSRF_TOKEN", "")
    app.jinja_env.globals["csrf_token"] = lambda: token
    app.context_processor(lambda: {"current_user": READER})
    if os.environ.get("BENCH_FLOOR"):
        add_gatehouse_floor(app, os.environ["REDIS_URL"], os.environ["OIDC_ISSUER"])
    return app


def add_gatehouse_floor(app: Flask, redis_url: str, issuer: str) -> None:
    """Gatehouse's one read.lua round trip before each page and its security headers after it (server F)."""
    # Imported here: the plain app (B) must not even load Gatehouse's modules.
    from config import DevelopmentConfig as settings
    from connections import make_redis
    from security import header_list, security_headers
    from sessions import keys
    from sessions.scripts import SessionScripts

    scripts = SessionScripts(make_redis(redis_url, socket_timeout=1.0, max_connections=50))
    cookie = settings.SESSION_COOKIE_NAME
    timeouts = [settings.SESSION_IDLE_TIMEOUT, settings.SESSION_ABSOLUTE_TIMEOUT, settings.SESSION_LAST_SEEN_INTERVAL]
    headers = [*header_list(security_headers([issuer])), ("Cache-Control", "no-store"), ("Vary", "Cookie")]

    def read_session() -> None:
        parsed = keys.parse_sid(request.cookies.get(cookie))
        if parsed is None or parsed[0] is None:
            raise RuntimeError("BENCH_FLOOR needs Gatehouse's signed-in cookie")
        user, member = parsed
        args = [time.time(), *timeouts, request.remote_addr or "", member]
        if not scripts.read(keys=keys.signed_in_keys(user, member), args=args):
            raise RuntimeError("the planted session is gone")

    def add_headers(response: Response) -> Response:
        response.headers.extend(headers)
        return response

    app.before_request(read_session)
    app.after_request(add_headers)
