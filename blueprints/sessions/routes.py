"""The devices page: every session of the user, and signing other sessions out."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from audit import events as audit
from audit.activity import recent_activity
from errors import render_error
from oidc.provider import oidc_providers
from sessions.lifecycle import list_sessions, revoke_other_sessions, revoke_session
from sessions.user import current_profile, current_session, login_required

bp = Blueprint("sessions", __name__)


@bp.get("/sessions")
@login_required
def index() -> str:
    """List the user's active sessions, the current one marked, and their recent activity."""
    identity = current_session().identity
    activity = recent_activity(identity.issuer, identity.subject) if identity else None
    return render_template(
        "sessions/index.html",
        sessions=list_sessions(),
        activity=activity,
        timezone=current_profile()["timezone"],
        provider_labels=provider_labels(identity.issuer if identity else None),
    )


def provider_labels(issuer: str | None) -> dict[str | None, str]:
    """What each session's provider is called on the page, by name.

    A session stored before sessions kept their provider's name (None) came from the provider of the user's issuer.
    """
    providers = oidc_providers()
    labels: dict[str | None, str] = {provider.name: provider.label for provider in providers.all}
    legacy = providers.issuing(issuer)
    if legacy is not None:
        labels[None] = legacy.label
    return labels


@bp.post("/sessions/<handle>/revoke")
@login_required
def revoke(handle: str) -> BaseResponse | tuple[Response | str, int]:
    """Sign one other session out; a handle that is not one of the user's other sessions changes nothing (404)."""
    if not revoke_session(handle):
        return render_error(404, "That session is not one of your other sessions, or it has already ended.")
    audit.record_for_session("session_revoked", "user", detail=f"session {handle}")
    flash("That device has been signed out.", "success")
    return redirect(url_for("sessions.index"))


@bp.post("/sessions/revoke-others")
@login_required
def revoke_others() -> BaseResponse:
    """Sign out every session of the user except this one."""
    ended = revoke_other_sessions()
    audit.record_for_session("session_revoked", "user_others", detail=f"{ended} other sessions ended")
    flash(f"Signed out {ended} other session{'s' if ended != 1 else ''}.", "success")
    return redirect(url_for("sessions.index"))
