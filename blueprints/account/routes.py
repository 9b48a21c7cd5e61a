"""Delete my account: a confirmation page, then a POST behind a fresh sign-in."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from accounts.deletion import delete_current_account
from sessions.user import login_required
from signin.reauth import recent_sign_in_required

bp = Blueprint("account", __name__)

# Deleting needs an authentication at the provider at most this many seconds old.
DELETE_MAX_AGE = 300


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
