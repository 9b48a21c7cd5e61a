"""/healthz (the process is up) and /readyz (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from jobs.queues import queue_answers
from sessions.store import store_answers

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (no dependency is touched)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Redis (sessions and queue) and the database answer; names whichever does not."""
    checks = {
        "redis": store_answers(),
        "queue": queue_answers(),
        "database": _database_ok(),
    }
    ready = all(checks.values())
    body = {name: "ok" if ok else "down" for name, ok in checks.items()}
    return jsonify(status="ok" if ready else "unavailable", checks=body), 200 if ready else 503


def _database_ok() -> bool:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False
