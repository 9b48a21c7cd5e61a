"""Unbound extension objects. Nothing here connects, reads settings or logs at import.

Each is bound to an app by `create_app`. Authlib's OAuth registry is not listed: it is
a single-app object, so each app's provider builds its own (oidc/provider.py).
Flask-Session is not listed either: Gatehouse installs its own subclass of
Flask-Session's Redis interface (see sessions/store.py), which needs the app's Redis
client and timeouts at construction.
"""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for every model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
