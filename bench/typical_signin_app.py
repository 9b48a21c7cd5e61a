"""The typical Flask stack (bench/typical_app.py) with a real OpenID Connect sign-in (bench/signins.py's T).

    REDIS_URL=... SECRET_KEY=... OIDC_ISSUER=... TYPICAL_DATABASE_URL=sqlite:///... \
        gunicorn -c gunicorn.conf.py 'bench.typical_signin_app:create_app()'

What a Flask app following Authlib's and Flask-Login's documentation runs: `/login` calls Authlib's
`authorize_redirect` (state, nonce and, asked for, PKCE S256 kept in the session), `/auth/callback`
calls `authorize_access_token` (code exchange, then Authlib's own ID token check: signature against
the provider's JWKS, iss, aud, exp, nonce) and takes the user from the ID token's claims (no UserInfo
call), upserts them into SQL with SQLAlchemy in the request, gives the session a new id (Flask-Session's
`regenerate`, against session fixation), calls Flask-Login's `login_user` and redirects. The session is
Flask-Session's plain Redis interface, as in typical_app.py, and the signed-in page is the same.

No outbox, no audit event, no per-user index, no UserInfo: what Gatehouse does beyond this is its
own cost, and bench/signins.py reports the ratio with that in mind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, redirect, request, session, url_for
from flask_login import login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.wrappers import Response as BaseResponse

from bench import typical_app
from bench.plain_app import Reader


class Base(DeclarativeBase):
    """The typical app's own declarative base (its table is not Gatehouse's)."""


# Unbound, as Flask-SQLAlchemy's docs have it: create_app binds it.
db = SQLAlchemy(model_class=Base)


class TypicalUser(db.Model):  # type: ignore[name-defined,misc]
    """The user row a typical callback upserts: who they are at the provider, what they are called."""

    __tablename__ = "typical_users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    signed_in_at: Mapped[int] = mapped_column(BigInteger)


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """typical_app's app with /login and /auth/callback: OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
    TYPICAL_DATABASE_URL besides typical_app's settings."""
    environ = os.environ if environ is None else environ
    oauth = OAuth()

    def login() -> BaseResponse:
        """Start the sign-in: Authlib keeps state, nonce and the PKCE verifier in the session."""
        session["next"] = request.args.get("next", "/")
        return oauth.provider.authorize_redirect(url_for("typical_auth.callback", _external=True))  # type: ignore[no-any-return]

    app = typical_app.create_app(environ, views={"auth.login": login})
    app.config["SQLALCHEMY_DATABASE_URI"] = environ["TYPICAL_DATABASE_URL"]
    db.init_app(app)
    oauth.init_app(app)
    oauth.register(  # type: ignore[no-untyped-call]
        "provider",
        client_id=environ["OIDC_CLIENT_ID"],
        client_secret=environ["OIDC_CLIENT_SECRET"],
        server_metadata_url=f"{environ['OIDC_ISSUER']}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    callbacks = Blueprint("typical_auth", __name__)

    @callbacks.get("/auth/callback")
    def callback() -> BaseResponse:
        """Finish the sign-in: Authlib's token exchange and ID token check, the upsert, Flask-Login."""
        token = oauth.provider.authorize_access_token()
        claims: dict[str, Any] = token["userinfo"]  # Authlib's name for the ID token's validated claims
        upsert_user(environ["OIDC_ISSUER"], claims)
        next_path = session.pop("next", "/")
        app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        reader = Reader(subject=claims["sub"], display_name=claims.get("name") or claims["sub"])
        login_user(reader)
        session["user"] = typical_app.user_fields(reader)
        return redirect(next_path)

    app.register_blueprint(callbacks)
    return app


def upsert_user(issuer: str, claims: Mapping[str, Any]) -> None:
    """INSERT … ON CONFLICT (issuer, subject) DO UPDATE, committed before the callback answers."""
    values = {
        "issuer": issuer,
        "subject": claims["sub"],
        "email": claims.get("email"),
        "name": claims.get("name"),
        "signed_in_at": int(time.time() * 1000),
    }
    statement = insert(TypicalUser).values(**values)
    changed = {key: statement.excluded[key] for key in ("email", "name", "signed_in_at")}
    db.session.execute(statement.on_conflict_do_update(index_elements=["issuer", "subject"], set_=changed))
    db.session.commit()


def create_tables(environ: Mapping[str, str]) -> None:
    """Create the typical app's table (the bench calls it once, before the servers start)."""
    app = create_app(environ)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
