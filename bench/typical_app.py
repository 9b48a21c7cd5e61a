"""A typical Flask stack serving the same signed-in page (bench/pages.py's C).

    REDIS_URL=redis://127.0.0.1:6379/0 SECRET_KEY=... gunicorn -c gunicorn.conf.py 'bench.typical_app:create_app()'

What many Flask apps run: Flask-Session's plain Redis interface (SESSION_TYPE="redis", its
defaults otherwise: msgpack, permanent sessions, refreshed on every request), Flask-Login with
a user_loader that builds the user from the session (no database), and Flask-WTF's
CSRFProtect, whose signed token the sign-out form carries. It renders the same templates
as Gatehouse and plain_app.py, with Flask-Login's `current_user`, so only the stack differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, session
from flask_login import LoginManager, login_user
from flask_session import Session
from flask_wtf.csrf import CSRFProtect
from redis import Redis

from bench.plain_app import ROOT, Reader, add_page_routes


def create_app(environ: Mapping[str, str] | None = None, views: Mapping[str, Callable[[], Any]] | None = None) -> Flask:
    """The typical app, configured from `environ` (default: the process's): SECRET_KEY, REDIS_URL.

    `views` serves more of Gatehouse's endpoints (add_page_routes): bench/typical_signin_app.py's sign-in.
    """
    environ = os.environ if environ is None else environ
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=environ["SECRET_KEY"],
        SESSION_TYPE="redis",
        # Passed explicitly, as the docs recommend: Flask-Session's own default is localhost:6379.
        SESSION_REDIS=Redis.from_url(environ["REDIS_URL"]),
        SESSION_COOKIE_NAME="typical_session",
    )
    Session(app)
    CSRFProtect(app)
    login = LoginManager(app)

    @login.user_loader
    def load_user(user_id: str) -> Reader | None:
        """The user from what sign-in stored in the session: no database read per page."""
        stored = session.get("user")
        return Reader(**stored) if stored and stored.get("subject") == user_id else None

    add_page_routes(app, views)
    return app


def plant_session(app: Flask, reader: Reader, headers: dict[str, str]) -> str:
    """Sign `reader` in as a sign-in view would (login_user + the user in the session); returns the cookie value.

    `headers` must be the ones the load sends: Flask-Login's session protection ties the
    session to the client's address and User-Agent, and a mismatch would rewrite it each time.
    """
    with app.test_request_context("/", headers=headers):
        login_user(reader)
        session["user"] = user_fields(reader)
        app.session_interface.save_session(app, session, app.response_class())
        return session.sid  # type: ignore[attr-defined]


def user_fields(reader: Reader) -> dict[str, Any]:
    """What the session keeps of the user."""
    return {"subject": reader.subject, "display_name": reader.display_name, "locale": reader.locale}
