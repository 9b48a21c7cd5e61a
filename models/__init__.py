"""SQL models (SQLAlchemy 2 typed mappings), one module per aggregate."""

from models.outbox import OutboxJob
from models.user import User

__all__ = ["OutboxJob", "User"]
