"""Routes for signing in and out."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

import metrics
from audit import events as audit
from errors import RETRY_AFTER_SECONDS
from extensions import csrf
from jobs.queues import queued_together
from oidc.provider import Provider, oidc_providers
from signin import backchannel
from signin.authorize import authorization_url
from signin.callback import LoginResult, complete_login
from signin.failures import LoginFailed, failure_message
from signin.linking import confirm_link
from signin.reauth import confirm_reauthentication, record_reauthentication
from signin.redirects import safe_next
from signin.session import sign_in
from signin.signout import sign_out
from web import external_url

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# Messages /login can show; the query string carries a code, never free text.
NO_SUCH_PROVIDER = "There is no such sign-in provider here."
LOGIN_NOTICES = {
    "expired": "Your session has ended. Please sign in again.",
    "signed_out": "You have been signed out.",
}


@bp.get("/login")
def login() -> BaseResponse | str | tuple[str, int]:
    """Show the providers to choose from (or why the user must sign in again); with one, go straight there."""
    next_path = safe_next(request.args.get("next"))
    notice = LOGIN_NOTICES.get(request.args.get("reason", ""))
    providers = oidc_providers()
    if notice or providers.several:
        choices = providers.all if providers.several else ()
        return render_template("auth/login.html", notice=notice, next_path=next_path, providers=choices)
    return start_sign_in(providers.all[0], next_path)


@bp.get("/login/<name>")
def login_with(name: str) -> BaseResponse | str | tuple[str, int]:
    """Start a sign-in with the provider of that name."""
    provider = oidc_providers().named(name)
    if provider is None:
        return render_template("auth/error.html", message=NO_SUCH_PROVIDER), 404
    return start_sign_in(provider, safe_next(request.args.get("next")))


def start_sign_in(provider: Provider, next_path: str) -> BaseResponse | tuple[str, int]:
    """Send the browser to `provider`'s authorization endpoint, or show why it cannot go."""
    try:
        url = authorization_url(provider, next_path)
    except LoginFailed as failure:
        log.warning("sign-in could not start: %s", failure.reason)
        return render_template("auth/error.html", message=failure.message), 503
    return redirect(url)


@bp.get("/auth/callback")
def callback() -> BaseResponse | tuple[str, int]:
    """The one provider's callback (OIDC_ISSUER): finish its sign-in."""
    providers = oidc_providers()
    if providers.several:
        return render_template("auth/error.html", message=NO_SUCH_PROVIDER), 404
    return finish_sign_in(providers.all[0])


@bp.get("/auth/callback/<name>")
def provider_callback(name: str) -> BaseResponse | tuple[str, int]:
    """The callback of the provider of that name (OIDC_PROVIDERS): finish its sign-in."""
    provider = oidc_providers().named(name)
    if provider is None or provider.settings.single:
        return render_template("auth/error.html", message=NO_SUCH_PROVIDER), 404
    return finish_sign_in(provider)


def finish_sign_in(provider: Provider) -> BaseResponse:
    """Validate everything, start a new session; either way the code leaves the address bar.

    The jobs it queues (the user's persistence, the audit event) go on the queue together, so an idle
    worker takes them as one batch.
    """
    with queued_together():
        return _finish_sign_in(provider)


def _finish_sign_in(provider: Provider) -> BaseResponse:
    try:
        result = complete_login(request.args, provider)
        if result.reauthentication is not None:
            return reauthenticated(result)
        if result.link is not None:
            return linked(result)
        sign_in(result)
    except LoginFailed as failure:
        log.warning("sign-in failed: %s", failure.reason)
        metrics.sign_in(failure.kind)
        audit.record("sign_in", failure.kind, issuer=provider.settings.issuer)
        return redirect(url_for("auth.failed", reason=failure.kind), 303)
    metrics.sign_in("success")
    audit.record_for_session("sign_in", "success")
    return redirect(result.next_path)


def reauthenticated(result: LoginResult) -> BaseResponse:
    """A signed-in user confirming it is them (signin/reauth.py): no new session; audited either way."""
    try:
        confirm_reauthentication(result)
    except LoginFailed as failure:
        log.warning("re-authentication refused: %s", failure.reason)
        metrics.sign_in(failure.kind)
        record_reauthentication(result, failure.kind)
        return redirect(url_for("auth.failed", reason=failure.kind), 303)
    record_reauthentication(result, "success")
    # Back where the user was: after a POST (its confirmation page) they press again.
    flash("Your sign-in has been confirmed.", "success")
    return redirect(result.next_path, 303)


def linked(result: LoginResult) -> BaseResponse:
    """A signed-in user linking another provider's sign-in (signin/linking.py): no new session; audited."""
    provider = oidc_providers().named(result.provider)
    label = provider.label if provider else result.provider
    try:
        added = confirm_link(result)
    except LoginFailed as failure:
        log.warning("linking refused: %s", failure.reason)
        audit.record_for_session("identity_linked", failure.kind, detail=result.provider)
        return redirect(url_for("auth.failed", reason=failure.kind), 303)
    if added:
        audit.record_for_session("identity_linked", "success", detail=result.provider)
        flash(f"Your sign-in with {label} is now linked to this account.", "success")
    else:
        flash(f"Your sign-in with {label} was linked already.", "success")
    return redirect(result.next_path, 303)


@bp.get("/auth/failed")
def failed() -> tuple[str, int]:
    """Why sign-in failed, from a fixed list of messages (the callback redirects here)."""
    message = failure_message(request.args.get("reason", ""))
    return render_template("auth/error.html", message=message), 400


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out: delete the session record and cookie, then end the provider's session if it can."""
    signed_out = external_url("auth.login", reason="signed_out")
    target = sign_out(signed_out)
    response = redirect(target)
    if target != signed_out:
        # The provider's URL carries the ID token as id_token_hint (RP-Initiated Logout); keep it out
        # of the page body werkzeug would otherwise render ("You should be redirected…").
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
    except backchannel.LogoutUnavailable as unavailable:
        log.warning("back-channel logout not judged, the provider is unusable: %s", unavailable)
        answer = jsonify(error="temporarily_unavailable", error_description="try again later")
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer, 503
    return jsonify({}), 200


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
