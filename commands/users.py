"""`flask --app app users …`: look at the persisted users."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from extensions import db
from models.user import User

users_cli = AppGroup("users", help="Inspect persisted users.")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_users(as_json: bool) -> None:
    """List users, oldest first."""
    for user in db.session.execute(select(User).order_by(User.id)).scalars():
        if as_json:
            click.echo(json.dumps(user.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"{user.issuer}  {user.subject}  {user.display_name!r}  {user.email or '-'}")
