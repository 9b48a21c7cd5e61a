"""Gatehouse with one extra page behind `recent_sign_in_required`, for the re-authentication tests on the real stack.

gunicorn serves it as 'tests.support.reauth_app:create_app()'.
"""

from __future__ import annotations

from flask import Blueprint, Flask

import app as gatehouse
from sessions.user import current_session
from signin.reauth import recent_sign_in_required

MAX_AGE = 60

sensitive = Blueprint("sensitive", __name__)


@sensitive.get("/sensitive")
@recent_sign_in_required(max_age=MAX_AGE)
def page() -> str:
    """A page that needs an authentication at most MAX_AGE seconds old."""
    return f"sensitive page, authenticated at {current_session().auth_time}"


def create_app() -> Flask:
    """Gatehouse's app, plus the sensitive page."""
    app = gatehouse.create_app()
    app.register_blueprint(sensitive)
    return app
