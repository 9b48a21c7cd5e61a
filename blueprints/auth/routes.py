"""Routes for signing in and out."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

import metrics
from audit import events as audit
from blueprints.auth import backchannel, services
from blueprints.auth.redirects import safe_next
from extensions import csrf
from oidc.provider import ProviderError, oidc_provider
from sessions.lifecycle import end_user_session
from sessions.reauth import confirm_reauthentication
from sessions.token_record import StoredTokens
from sessions.tokens import read_tokens
from sessions.user import current_session
from web import external_url

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# Messages /login can show; the query string carries a code, never free text.
LOGIN_NOTICES = {
    "expired": "Your session has ended. Please sign in again.",
    "signed_out": "You have been signed out.",
}


@bp.get("/login")
def login() -> BaseResponse | str | tuple[str, int]:
    """Send the browser to the provider, or show why the user must sign in again."""
    next_path = safe_next(request.args.get("next"))
    notice = LOGIN_NOTICES.get(request.args.get("reason", ""))
    if notice:
        return render_template("auth/login.html", notice=notice, next_path=next_path)
    try:
        url = services.authorization_url(external_url("auth.callback"), next_path)
    except services.LoginFailed as failure:
        log.warning("sign-in could not start: %s", failure.reason)
        return render_template("auth/error.html", message=failure.message), 503
    return redirect(url)


@bp.get("/auth/callback")
def callback() -> BaseResponse:
    """Finish sign-in: validate everything, start a new session; either way the code leaves the address bar."""
    try:
        result = services.complete_login(request.args)
        if result.reauthentication is not None:
            return reauthenticated(result)
        services.sign_in(result)
    except services.LoginFailed as failure:
        log.warning("sign-in failed: %s", failure.reason)
        metrics.sign_in(failure.kind)
        audit.record("sign_in", failure.kind, issuer=oidc_provider().issuer)
        return redirect(url_for("auth.failed", reason=failure.kind), 303)
    metrics.sign_in("success")
    audit.record_for_session("sign_in", "success")
    return redirect(result.next_path)


def reauthenticated(result: services.LoginResult) -> BaseResponse:
    """A signed-in user confirming it is them (sessions/reauth.py): no new session; audited either way."""
    try:
        confirm_reauthentication(result)
    except services.LoginFailed as failure:
        log.warning("re-authentication refused: %s", failure.reason)
        metrics.sign_in(failure.kind)
        record_reauthentication(result, failure.kind)
        return redirect(url_for("auth.failed", reason=failure.kind), 303)
    record_reauthentication(result, "success")
    # Back where the user was: after a POST (its confirmation page) they press again.
    flash("Your sign-in has been confirmed.", "success")
    return redirect(result.next_path, 303)


def record_reauthentication(result: services.LoginResult, outcome: str) -> None:
    """The `reauthenticated` event, in the trail of the user who asked for it while their session is this one."""
    stored = current_session()
    asked = result.reauthentication or {}
    if stored.signed_in and stored.user == asked.get("user"):
        audit.record_for_session("reauthenticated", outcome)
    else:
        # Signed out meanwhile, or this browser now holds someone else's session: name no one.
        audit.record("reauthenticated", outcome, issuer=oidc_provider().issuer)


@bp.get("/auth/failed")
def failed() -> tuple[str, int]:
    """Why sign-in failed, from a fixed list of messages (the callback redirects here)."""
    message = services.failure_message(request.args.get("reason", ""))
    return render_template("auth/error.html", message=message), 400


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out: delete the session record and cookie, then end the provider's session if it can."""
    tokens = read_tokens()
    hint = logout_hint(tokens)
    if current_session().signed_in:
        audit.record_for_session("sign_out", "user")
    end_user_session()
    target = external_url("auth.login", reason="signed_out")
    try:
        metadata = oidc_provider().metadata()
    except ProviderError:
        return redirect(target)
    if not metadata.get("end_session_endpoint") or not hint:
        return redirect(target)
    end_session = oidc_provider().client.create_logout_url(post_logout_redirect_uri=target, **hint)
    # The URL carries the ID token as id_token_hint (RP-Initiated Logout); keep it out
    # of the page body werkzeug would otherwise render ("You should be redirected…").
    response = redirect(end_session["url"])
    response.set_data(b"")
    return response


@bp.post("/auth/backchannel-logout")
@csrf.exempt
def backchannel_logout() -> tuple[Response, int]:
    """OpenID Connect Back-Channel Logout: the provider posts a logout token, server to server (no CSRF token)."""
    try:
        backchannel.handle_logout_token(request.form)
    except backchannel.LogoutRefused as refusal:
        log.warning("back-channel logout refused: %s", refusal.description)
        return jsonify(error=refusal.error, error_description=refusal.description), 400
    return jsonify({}), 200


def logout_hint(tokens: StoredTokens | None) -> dict[str, str]:
    """How the end-session request names the session (LOGOUT_HINT); empty when it cannot."""
    if tokens is None:
        return {}
    if current_app.config["LOGOUT_HINT"] == "client_id":
        return {"client_id": current_app.config["OIDC_CLIENT_ID"]}
    return {"id_token_hint": tokens.id_token} if tokens.id_token else {}


# Auth pages whose URL carries no code or state (only `reason=<kind>`): they keep the app-wide
# referrer policy (security.py), so their forms post with our Origin and a same-origin Referer.
# Under `no-referrer` a browser sends `Origin: null` and no Referer, and sign-out would be
# refused (the cross-site check; over https also Flask-WTF's strict Referer check).
REFERRER_SAFE_ENDPOINTS = frozenset({"auth.failed"})


@bp.after_request
def keep_auth_pages_private(response: Response) -> Response:
    """Sign-in pages carry codes and state: never cache them, never leak them as a Referer."""
    response.headers["Cache-Control"] = "no-store"
    if request.endpoint not in REFERRER_SAFE_ENDPOINTS:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response
