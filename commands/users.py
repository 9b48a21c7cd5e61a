"""`flask --app app users …`: look at persisted users; disable or enable one."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from accounts.admin import UnknownUser, set_disabled
from connections import WriteNotReplicated
from extensions import db
from models.user import User

users_cli = AppGroup("users", help="Inspect persisted users; disable or enable one.")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_users(as_json: bool) -> None:
    """List users, oldest first."""
    for user in db.session.execute(select(User).order_by(User.id)).scalars():
        if as_json:
            click.echo(json.dumps(user.to_dict(), ensure_ascii=False))
        else:
            state = "  disabled" if user.disabled else ""
            click.echo(f"{user.issuer}  {user.subject}  {user.display_name!r}  {user.email or '-'}{state}")


def _change(subject: str, issuer: str, disabled: bool) -> None:
    if not subject.strip() or not issuer.strip():
        raise click.BadParameter("SUBJECT and --issuer must not be empty")
    try:
        ended = set_disabled(issuer, subject, disabled)
    except UnknownUser as error:
        raise click.ClickException(f"{error}; nothing was changed (see `flask --app app users list`)") from error
    except WriteNotReplicated as error:
        raise click.ClickException(
            f"Redis took the change but no replica confirmed it in time ({error}); run the command again"
        ) from error
    except (RedisError, SQLAlchemyError) as error:
        raise click.ClickException(
            f"cannot reach Redis or the database ({type(error).__name__}); nothing was changed"
        ) from error
    if disabled:
        click.echo(f"disabled {subject} at {issuer}: {ended} session(s) ended; sign-in is refused until enabled")
    else:
        click.echo(f"enabled {subject} at {issuer}: they can sign in again")


@users_cli.command("disable")
@click.argument("subject")
@click.option("--issuer", required=True, help="The user's issuer, exactly as `users list` shows it.")
def disable(subject: str, issuer: str) -> None:
    """End every session of a user now and refuse their sign-ins."""
    _change(subject, issuer, True)


@users_cli.command("enable")
@click.argument("subject")
@click.option("--issuer", required=True, help="The user's issuer, exactly as `users list` shows it.")
def enable(subject: str, issuer: str) -> None:
    """Let a disabled user sign in again."""
    _change(subject, issuer, False)
