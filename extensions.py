"""Unbound extension objects. Nothing here connects, reads settings or logs at import.

Each is bound to an app by `create_app`. Authlib's OAuth registry is not listed: it is
a single-app object, so each app's provider builds its own (oidc/provider.py).
Flask-Session is not listed either: Gatehouse installs its own subclass of
Flask-Session's Redis interface (see sessions/store.py), which needs the app's Redis
client and timeouts at construction.
"""

from typing import TYPE_CHECKING

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for every model."""


db = SQLAlchemy(model_class=Base)

# The base class of every model: `db.Model`. Flask-SQLAlchemy types it as an attribute, which mypy
# cannot take as a base class; it is a declarative base like `Base` (plus Flask-SQLAlchemy's table
# name and bind mixins), so models are type-checked against `Base`.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()
