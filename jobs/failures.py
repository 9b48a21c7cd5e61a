"""How a job fails: for good when no retry can cure it, otherwise raised for RQ's retries.

Every job runs its database work through `job_transaction`, which commits, or rolls back and
logs (naming the user only by their opaque id), and always hands the connection back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from rq import get_current_job
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from extensions import db

log = logging.getLogger(__name__)

# Failures that no retry can cure: the job fails at once (visible in `jobs status`) instead of
# retrying for minutes. Later jobs of the same user are independent and still run.
PERMANENT_FAILURES = (DataError, IntegrityError, KeyError, TypeError, ValueError)


class PermanentJobFailure(Exception):
    """A job failed for a reason no retry can cure."""


def give_up(message: str, error: BaseException) -> NoReturn:
    """Fail the current job for good (no retries), logging `message` and the error's type only."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
    reason = failure_reason(error)
    log.error("%s: %s (permanent: not retried)", message, reason)
    raise PermanentJobFailure(f"{message}: {reason}") from None


def failure_reason(error: BaseException) -> str:
    """What went wrong, without the values involved (they may be personal data).

    For a database error that is the database's primary message ("value too long for
    type character varying(80)"), never its detail or the statement's parameters.
    """
    if isinstance(error, DBAPIError) and error.orig is not None:
        diagnosis = getattr(error.orig, "diag", None)
        primary = getattr(diagnosis, "message_primary", None) or str(error.orig).splitlines()[0]
        return f"{type(error).__name__}: {primary}"
    return type(error).__name__


@contextmanager
def job_transaction(
    logger: logging.Logger, what: str, *args: object, give_up_on: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Commit the block's database work and hand the connection back; on an error, roll back.

    An error of a `give_up_on` type fails the job for good (`give_up`); any other is logged as
    `what % args`, with its traceback, and re-raised for RQ's retries.
    """
    try:
        yield
        db.session.commit()
    except give_up_on as error:
        db.session.rollback()
        give_up(what % args, error)
    except Exception:
        db.session.rollback()
        logger.exception(what, *args)
        raise
    finally:
        db.session.remove()
