"""The account: its linked sign-ins (link another provider's, unlink one), and deleting it behind a fresh sign-in."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from accounts.deletion import delete_current_account
from accounts.identities import LinkedIdentity, account_identities
from accounts.moves import move_current_account
from audit import events as audit
from errors import render_error
from oidc.provider import oidc_providers
from sessions.account_moves import NoLinkLeft
from sessions.identity_links import AccountGone, LastSignIn, Link
from sessions.user import current_profile, current_session, login_required
from signin.authorize import linking_url
from signin.failures import LoginFailed
from signin.linking import linked_providers, unlink
from signin.reauth import recent_sign_in_required
from users.schema import Identity

bp = Blueprint("account", __name__)

# Deleting, linking and unlinking need an authentication at the provider at most this many seconds old.
DELETE_MAX_AGE = 300
LINK_MAX_AGE = 300


@bp.get("/account/delete")
@login_required
def confirm_delete() -> str:
    """Say what deleting the account does, with the button that does it."""
    return render_template("account/delete.html")


@bp.post("/account/delete")
@recent_sign_in_required(max_age=DELETE_MAX_AGE, confirm_endpoint="account.confirm_delete")
def delete() -> Response:
    """Delete the account: every session ends now, the saved data follows through the queue."""
    delete_current_account()
    return redirect(url_for("account.deleted"), 303)


@bp.get("/account/deleted")
def deleted() -> str:
    """Confirm the deletion (no session needed: there is none any more)."""
    return render_template("account/deleted.html")


@bp.get("/account/identities")
@login_required
def identities() -> str:
    """The account's sign-ins (its own and the linked ones), with a form to link each provider not yet linked."""
    linked = linked_providers()
    providers = oidc_providers().all
    identity = current_session().identity
    saved: dict[tuple[str, str] | None, LinkedIdentity] = {}
    try:
        if identity is not None:
            listed = account_identities(identity.issuer, identity.subject)
            saved = {(row.issuer, row.subject): row for row in listed}
    except SQLAlchemyError:
        pass  # when each was last used shows once the database answers again
    rows = [
        {
            "provider": provider,
            "link": linked[provider.name],
            "own": linked[provider.name] is None,
            "saved": saved.get(_identity_of(linked[provider.name], identity)),
            "current": current_session().provider_name == provider.name,
        }
        for provider in providers
        if provider.name in linked
    ]
    unlinked = [provider for provider in providers if provider.name not in linked]
    return render_template(
        "account/identities.html", rows=rows, unlinked=unlinked, timezone=current_profile()["timezone"]
    )


@bp.post("/account/identities/link/<name>")
@recent_sign_in_required(max_age=LINK_MAX_AGE, confirm_endpoint="account.identities")
def link(name: str) -> Response | tuple[Response | str, int]:
    """Send the user to that provider to sign in; the identity they authenticate as there is linked."""
    provider = oidc_providers().named(name)
    if provider is None:
        return render_error(404, "There is no such sign-in provider here.")
    if name in linked_providers():
        flash(f"Your account already has a sign-in with {provider.label}.", "success")
        return redirect(url_for("account.identities"), 303)
    try:
        url = linking_url(provider, url_for("account.identities"), current_session().user or "")
    except LoginFailed as failure:
        return render_error(503, failure.message)
    return redirect(url, 303)


@bp.post("/account/identities/<name>/unlink")
@recent_sign_in_required(max_age=LINK_MAX_AGE, confirm_endpoint="account.identities")
def unlink_identity(name: str) -> Response | tuple[Response | str, int]:
    """Unlink the account's sign-in at that provider; the sessions it signed in end.

    Unlinking the sign-in that created the account moves the account to a new name (accounts/moves.py):
    every session of it ends, and the person signs in again with a remaining one.
    """
    if current_session().provider_name == name:
        return render_error(400, "You are signed in with that sign-in now: sign in with another one to unlink it.")
    linked = linked_providers()
    if name not in linked:
        return render_error(404, "That sign-in is not linked to your account.")
    link = linked[name]
    try:
        if link is None:
            move_current_account()
            return redirect(url_for("account.moved"), 303)
        ended = unlink(link)
    except (NoLinkLeft, LastSignIn):
        return render_error(400, "That is your account's only sign-in: link another one before you unlink it.")
    except AccountGone:
        return render_error(409, "Your account was disabled or deleted meanwhile; nothing was unlinked.")
    if ended is None:
        return render_error(404, "That sign-in is not linked to your account.")
    audit.record_for_session("identity_unlinked", "user", detail=name)
    flash(f"Unlinked. {ended} session(s) signed in with it ended.", "success")
    return redirect(url_for("account.identities"), 303)


@bp.get("/account/moved")
def moved() -> str:
    """Confirm that the account's first sign-in was unlinked (no session needed: every one of them ended)."""
    return render_template("account/moved.html")


def _identity_of(link: Link | None, identity: Identity | None) -> tuple[str, str] | None:
    """(issuer, subject) of a row: the link's, or the account's own."""
    if link is not None:
        return link.issuer, link.subject
    return (identity.issuer, identity.subject) if identity else None
