"""A team's own blueprint on Gatehouse: a protected page and two session hooks (docs/extending.md).

    from app import create_app
    from examples import team

    app = create_app()
    team.register(app)

- `/team` is for signed-in users only (Flask-Login's `login_required`): anonymous visitors go
  to /login and come back here. It reads the user from Flask-Login's `current_user`, which
  Gatehouse builds from the server-side session (no database query).
- `add_team` runs once per sign-in (`before_session_saved`) and keeps the provider's `team`
  claim in this session.
- `refuse_capitals_only` runs on every later change of the session (`on_refresh`): on a
  profile edit (trigger "update") it refuses a display name written in capitals only, and the
  profile page shows its message beside the field. It must not redo sign-in work: it only
  looks at the proposed change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, render_template, session
from flask_login import login_required

from sessions.hooks import SessionChangeRefused, SessionData, session_hooks

# The longest team name kept: the claim comes from the provider, the session stores it on every page.
TEAM_MAX = 40

bp = Blueprint("team", __name__, template_folder="templates")


@bp.get("/team")
@login_required
def index() -> str:
    """The team page: who is signed in and the team their sign-in brought."""
    return render_template("team/index.html", team=session.get("team", "none"))


def add_team(data: SessionData, claims: Mapping[str, Any]) -> SessionData:
    """At sign-in: keep the provider's `team` claim (a short text; "none" when absent or odd) in this session."""
    team = claims.get("team")
    data["team"] = team[:TEAM_MAX] if isinstance(team, str) and team.strip() else "none"
    return data


def refuse_capitals_only(trigger: str, old: Mapping[str, Any], new: SessionData) -> SessionData:
    """On a profile edit: refuse a display name in capitals only (the page shows why, next to the field)."""
    name = (new.get("profile") or {}).get("display_name") or ""
    if trigger == "update" and name.isupper():
        raise SessionChangeRefused("Please do not write your name in capitals only.", field="display_name")
    return new


def register(app: Flask) -> None:
    """Mount the team blueprint and its hooks on a Gatehouse app (right after `create_app`, before any request)."""
    app.register_blueprint(bp)
    hooks = session_hooks(app)
    hooks.before_session_saved(add_team)
    hooks.on_refresh(refuse_capitals_only)
