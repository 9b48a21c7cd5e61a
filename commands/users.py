"""`flask --app app users …`: look at persisted users; disable or enable one."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from accounts.admin import UnknownUser, find_account, set_disabled
from accounts.identities import listed_identities
from connections import WriteNotReplicated
from extensions import db
from models.user import User

users_cli = AppGroup("users", help="Inspect persisted users; disable or enable one.")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_users(as_json: bool) -> None:
    """List users, oldest first, each with the identities they sign in with (their own first)."""
    users = db.session.execute(select(User).order_by(User.id)).scalars().all()
    identities = listed_identities(users)
    for user in users:
        if as_json:
            click.echo(json.dumps({**user.to_dict(), "identities": identities[user.id]}, ensure_ascii=False))
        else:
            own = (user.issuer, user.subject)
            linked = [each for each in identities[user.id] if (each["issuer"], each["subject"]) != own]
            state = "  disabled" if user.disabled else ""
            also = f"  linked: {', '.join(identity['provider'] for identity in linked)}" if linked else ""
            click.echo(f"{user.issuer}  {user.subject}  {user.display_name!r}  {user.email or '-'}{state}{also}")


def _change(subject: str, issuer: str, disabled: bool) -> None:
    if not subject.strip() or not issuer.strip():
        raise click.BadParameter("SUBJECT and --issuer must not be empty")
    try:
        # Any identity of the account finds it; the change is the whole account's, under its own identity.
        owner = find_account(issuer, subject)
        ended = set_disabled(*owner, disabled)
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
    found = "" if owner == (issuer, subject) else f" (the account of {owner[1]} at {owner[0]}, linked)"
    if disabled:
        click.echo(f"disabled {subject} at {issuer}{found}: {ended} session(s) ended; sign-in is refused until enabled")
    else:
        click.echo(f"enabled {subject} at {issuer}{found}: they can sign in again")


@users_cli.command("disable")
@click.argument("subject")
@click.option("--issuer", required=True, help="The issuer of any of the user's identities, as `users list` shows it.")
def disable(subject: str, issuer: str) -> None:
    """End every session of a user now and refuse their sign-ins (SUBJECT: any of their identities)."""
    _change(subject, issuer, True)


@users_cli.command("enable")
@click.argument("subject")
@click.option("--issuer", required=True, help="The issuer of any of the user's identities, as `users list` shows it.")
def enable(subject: str, issuer: str) -> None:
    """Let a disabled user sign in again."""
    _change(subject, issuer, False)
