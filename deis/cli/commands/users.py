"""users:list: every registered user (administrators only)."""

from __future__ import annotations

import click

from ..common import client
from ..output import heading, table


@click.command("users:list")
def users_list():
    """List all registered users (administrators only)."""
    users = client().results("/v1/users/")
    heading("Users")
    table(["Username", "Email", "Admin", "Joined"],
          [[u["username"], u.get("email"), "yes" if u.get("is_superuser") else "", u.get("date_joined")]
           for u in users])


commands = [users_list]
