"""The dashboard page (HTML, or JSON for API callers)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template

from blueprints.dashboard.services import load_dashboard
from sessions.user import login_required
from web import wants_json

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
@login_required
def show() -> Response | tuple[str, int] | tuple[Response, int]:
    """Show data fetched from the downstream API with the user's access token."""
    result = load_dashboard()
    status = 200 if result.ok else 502
    if wants_json():
        return jsonify(ok=result.ok, data=result.data, error=result.error), status
    return render_template("dashboard/show.html", result=result), status
