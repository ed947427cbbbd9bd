"""perms:*: who may use an app (collaborators), or who administers the platform (--admin)."""

from __future__ import annotations

import click

from ..common import app_option, client, current_app
from ..output import echo, heading, working


def target(app: str | None, admin: bool) -> tuple[str | None, str]:
    """(app, API path): the app's perms, or the admins' with --admin."""
    if admin:
        if app:
            raise click.UsageError("Give either --app or --admin, not both.")
        return None, "/v1/admin/perms"
    app = current_app(app)
    return app, f"/v1/apps/{app}/perms"


admin_option = click.option("--admin", is_flag=True, help="Act on platform administrators instead of an app.")


@click.command("perms:list")
@app_option
@admin_option
def perms_list(app, admin):
    """List the users who may use an app (or, with --admin, the administrators)."""
    app, path = target(app, admin)
    c = client()
    if admin:
        heading("Administrators")
        names = [user["username"] for user in c.results(path)]
    else:
        heading(f"{app}'s Users")
        names = c.get(path).json()["users"]
    for name in names:
        echo(name)
    if not names:
        echo("No users")


@click.command("perms:create")
@click.argument("username")
@app_option
@admin_option
def perms_create(username, app, admin):
    """Let a user use an app (or, with --admin, make them an administrator)."""
    app, path = target(app, admin)
    message = f"Adding {username} to {app} collaborators..." if app else \
        f"Adding {username} to system administrators..."
    with working(message):
        client().post(path, {"username": username})
    echo(f"{message} done")


@click.command("perms:delete")
@click.argument("username")
@app_option
@admin_option
def perms_delete(username, app, admin):
    """Stop a user using an app (or, with --admin, being an administrator)."""
    app, path = target(app, admin)
    message = f"Removing {username} from {app} collaborators..." if app else \
        f"Removing {username} from system administrators..."
    with working(message):
        client().delete(f"{path}/{username}")
    echo(f"{message} done")


commands = [perms_list, perms_create, perms_delete]
