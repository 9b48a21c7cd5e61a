"""`flask --app app audit list`: read the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from audit.store import events

audit_cli = AppGroup("audit", help="Read the audit trail of security events.")


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2026-12-01T09:00:00Z", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _line(row: dict[str, object]) -> str:
    """One event as text; a row of identical events of a minute ends with their count ("\N{MULTIPLICATION SIGN}30")."""
    who = f"{row['subject']}@{row['issuer']}" if row["subject"] else "-"
    line = f"{row['time']}  {row['kind']}  {row['outcome'] or '-'}  {who}  {row['detail'] or ''}".rstrip()
    repeats = row["repeats"]
    return f"{line}  \N{MULTIPLICATION SIGN}{repeats}" if isinstance(repeats, int) and repeats > 1 else line


@audit_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--subject", default=None, help="Only events of this subject (the provider's user id).")
@click.option("--issuer", default=None, help="Only events of users of this issuer.")
@click.option(
    "--since", default=None, metavar="ISO-TIME", help="Only events at or after this time (UTC unless it says)."
)
def list_events(as_json: bool, subject: str | None, issuer: str | None, since: str | None) -> None:
    """List audit events, oldest first (identical ones of one minute once, with their count)."""
    after = _moment(since)
    try:
        for event in events(issuer=issuer, subject=subject, since=after):
            row = event.to_dict()
            click.echo(json.dumps(row, ensure_ascii=False) if as_json else _line(row))
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot read the audit trail from the database ({type(error).__name__})") from error
