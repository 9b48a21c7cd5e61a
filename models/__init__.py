"""SQL models (SQLAlchemy 2 typed mappings), one module per aggregate."""

from models.audit import AuditEvent
from models.deleted_user import DeletedUser
from models.identity_unlink import IdentityUnlink
from models.outbox import OutboxJob
from models.user import User
from models.user_identity import UserIdentity

__all__ = ["AuditEvent", "DeletedUser", "IdentityUnlink", "OutboxJob", "User", "UserIdentity"]
