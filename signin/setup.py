"""Wiring the sign-in flow into an app (called by the factory)."""

from __future__ import annotations

from flask import Flask
from flask_login import user_logged_out

import metrics
from signin.failures import FAILURE_MESSAGES
from signin.signout import end_session_on_logout


def init_sign_in(app: Flask) -> None:
    """The sign-in metric learns the kinds of failure; `flask_login.logout_user()` ends the session."""
    metrics.register_sign_in_results(FAILURE_MESSAGES)
    user_logged_out.connect(end_session_on_logout, sender=app)
