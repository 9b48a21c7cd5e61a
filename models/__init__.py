"""SQL models (SQLAlchemy 2 typed mappings), one module per aggregate."""

from models.user import User

__all__ = ["User"]
