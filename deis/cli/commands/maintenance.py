"""maintenance:*: answer every request to an app with 503 and the maintenance page, or stop."""

from __future__ import annotations

import click

from ..common import app_option, client, current_app
from ..output import echo, working


def settings_path(app: str) -> str:
    return f"/v1/apps/{app}/settings/"


def saying(message: str, call) -> None:
    """`message` (with a spinner on a terminal) while `call()` asks the controller, then `message done`."""
    with working(message):
        call()
    echo(f"{message} done")


@click.command("maintenance:info")
@app_option
def maintenance_info(app):
    """Tell whether an app is in maintenance mode."""
    app = current_app(app)
    on = client().get(settings_path(app)).json().get("maintenance")
    echo(f"Maintenance mode is {'on' if on else 'off'} for {app}")


def switch(app: str | None, on: bool) -> None:
    app = current_app(app)
    saying(f"{'Enabling' if on else 'Disabling'} maintenance mode for {app}...",
           lambda: client().post(settings_path(app), {"maintenance": on}))


@click.command("maintenance:on")
@app_option
def maintenance_on(app):
    """Put an app into maintenance mode: every request is answered 503 with the maintenance page."""
    switch(app, True)


@click.command("maintenance:off")
@app_option
def maintenance_off(app):
    """Take an app out of maintenance mode: its processes serve requests again."""
    switch(app, False)


commands = [maintenance_info, maintenance_on, maintenance_off]
