"""The job outbox: jobs the queue could not take, kept in the SQL database until it can."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.audit import REQUEST_ID_MAX
from models.user import utcnow


class OutboxJob(Model):
    """One job waiting to be put on the queue (written only when enqueueing failed)."""

    __tablename__ = "job_outbox"

    # BigInteger on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # "module:function" of a job in the jobs package, and its plain-data arguments.
    func: Mapped[str] = mapped_column(String(255))
    args: Mapped[list[Any]] = mapped_column(JSON)
    # The id of the request that queued it (logs.py), given back to the job when the outbox is drained;
    # None for rows written before it was kept, and for jobs queued outside a request.
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX))
    # Why the queue refused it (for `flask --app app jobs status`).
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
