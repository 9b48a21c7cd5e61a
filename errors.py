"""Error pages and the clean sign-out when the downstream API refuses the user."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, make_response, redirect, render_template, url_for
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError
from werkzeug.wrappers import Response as BaseResponse

import metrics
from audit import events as audit
from clients.downstream import AuthenticationLost
from sessions.lifecycle import end_user_session
from web import wants_json

log = logging.getLogger(__name__)

PAGES = {400, 403, 404, 405, 413, 429, 500, 503}


# A 503 (Redis or the database away, a Redis failover under way) tells clients when to try again.
RETRY_AFTER_SECONDS = 2


def render_error(code: int, message: str | None = None) -> tuple[Response | str, int]:
    """The error page for `code` (JSON for API callers)."""
    if wants_json():
        response = jsonify(error=message or f"HTTP {code}")
    else:
        response = make_response(render_template(f"errors/{code}.html", message=message))
    if code == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, code


def handle_http_error(error: HTTPException) -> tuple[Response | str, int] | HTTPException:
    """Render our own page for the common HTTP errors."""
    if isinstance(error, SecurityError):
        # A Host outside TRUSTED_HOSTS: no URL can be built for it, so no page either.
        return Response("Unknown host.\n", status=400, mimetype="text/plain"), 400
    if error.code in PAGES:
        return render_error(error.code)
    return error


def handle_csrf_error(error: CSRFError) -> tuple[Response | str, int]:
    """A form without a valid CSRF token changes nothing."""
    return render_error(400, "This form has expired. Please go back, reload the page and try again.")


def handle_unavailable(error: Exception) -> tuple[Response | str, int]:
    """Redis or the database is down: a 503 page, never a traceback."""
    log.warning("dependency unavailable: %s", type(error).__name__)
    return render_error(503)


def handle_internal_error(error: InternalServerError) -> tuple[Response | str, int]:
    """Failures while opening or saving the session arrive here, wrapped; unwrap them."""
    if isinstance(error.original_exception, RedisError | RedisClusterException | OperationalError):
        return handle_unavailable(error.original_exception)
    return render_error(500)


def handle_authentication_lost(error: AuthenticationLost) -> BaseResponse | tuple[Response, int]:
    """The API refuses the user's token for good: end the session and ask for a new sign-in."""
    log.info("ending session: %s", error)
    audit.record_for_session("token_refused", "signed_out", detail=error.reason)
    end_user_session()
    metrics.api_sign_out(error.reason)
    if wants_json():
        return jsonify(error="sign-in required", login_url=url_for("auth.login")), 401
    return redirect(url_for("auth.login", reason="expired"))


def register_error_handlers(app: Flask) -> None:
    """Install every error handler on the app."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(RedisError, handle_unavailable)
    # A cluster client with no node answering while it re-reads the slot map (not a RedisError).
    app.register_error_handler(RedisClusterException, handle_unavailable)
    app.register_error_handler(OperationalError, handle_unavailable)
    app.register_error_handler(InternalServerError, handle_internal_error)
    app.register_error_handler(AuthenticationLost, handle_authentication_lost)
