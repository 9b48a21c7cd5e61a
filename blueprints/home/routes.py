"""The home page: who is signed in, and where to go."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    """Welcome page with sign-in or the signed-in user's links."""
    return render_template("home/index.html")
