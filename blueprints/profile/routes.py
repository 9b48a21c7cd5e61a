"""The profile page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from accounts.profile import (
    ProfileChangedElsewhere,
    ProfileUnavailable,
    save_profile,
    wait_until_loaded,
)
from audit import events as audit
from blueprints.profile.forms import ProfileForm
from sessions.hooks import SessionChangeRefused
from sessions.user import current_profile, login_required

bp = Blueprint("profile", __name__)

CHANGED_ELSEWHERE = (
    "Your profile changed since this page was opened (on another device, or it has just loaded). "
    "Nothing was saved: check the values below and save again."
)


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def edit() -> Response | str | tuple[str, int]:
    """Show the profile form; on a valid submit save it and redirect (Post/Redirect/Get).

    The form shows the saved profile from its first view: after a sign-in that Redis had to start
    afresh (its data was lost), it waits for the worker to load the row, PROFILE_LOAD_WAIT at most.
    """
    try:
        loaded = wait_until_loaded()
    except ProfileUnavailable:
        return redirect(url_for("auth.login", reason="expired"))
    before = current_profile()
    form = ProfileForm(data=before)
    if form.validate_on_submit():
        fields = form.profile_fields()
        try:
            save_profile(fields, shown_version=form.shown_version())
        except ProfileUnavailable:
            # The user's sessions were all ended meanwhile (revoked elsewhere): nothing was saved.
            return redirect(url_for("auth.login", reason="expired"))
        except ProfileChangedElsewhere:
            # Show what is saved now; the user reviews it and saves again.
            form = ProfileForm(formdata=None, data=current_profile())
            form.form_errors.append(CHANGED_ELSEWHERE)
            return render_template("profile/edit.html", form=form), 409
        except SessionChangeRefused as refusal:
            field = getattr(form, refusal.field, None) if refusal.field else None
            if field is not None:
                field.errors.append(refusal.message)
            else:
                form.form_errors.append(refusal.message)
        else:
            changed = sorted(name for name, value in fields.items() if value != before.get(name))
            audit.record_for_session("profile_changed", "saved", detail=",".join(changed) or "nothing changed")
            flash("Your profile has been saved.", "success")
            return redirect(url_for("profile.edit"))
    status = 400 if form.errors else 200
    return render_template("profile/edit.html", form=form, still_loading=not loaded), status
