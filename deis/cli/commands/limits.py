"""limits:*: memory and CPU limits per process type of an app (each change makes a release)."""

from __future__ import annotations

import click

from ..common import app_option, assignments, client, current_app
from ..output import aligned, echo, heading
from .config import change


def show_limits(app: str, config: dict) -> None:
    heading(f"{app} Limits")
    echo("\n--- Memory")
    aligned(config.get("memory") or {}, "Unlimited")
    echo("\n--- CPU")
    aligned(config.get("cpu") or {}, "Unlimited")


def kind_options(command):
    command = click.option("-c", "--cpu", "kind", flag_value="cpu", help="Limit CPU shares (0-1024).")(command)
    return click.option("-m", "--memory", "kind", flag_value="memory", default=True,
                        help="Limit memory, e.g. 512M or 1G (the default).")(command)


@click.command("limits:list")
@app_option
def limits_list(app):
    """List the resource limits of an app."""
    app = current_app(app)
    show_limits(app, client().get(f"/v1/apps/{app}/config").json())


@click.command("limits:set")
@click.argument("limits", nargs=-1, required=True, metavar="TYPE=LIMIT...")
@app_option
@kind_options
def limits_set(limits, app, kind):
    """Limit each process of a type: `deis limits:set web=512M`, `deis limits:set --cpu web=512`."""
    values = assignments(limits, "TYPE=LIMIT")
    app = current_app(app)
    if kind == "cpu":
        values = {k: int(v) if v.isdigit() else v for k, v in values.items()}
    show_limits(app, change(app, kind, values, "Applying limits..."))


@click.command("limits:unset")
@click.argument("types", nargs=-1, required=True, metavar="TYPE...")
@app_option
@kind_options
def limits_unset(types, app, kind):
    """Remove the memory (or, with --cpu, CPU) limit of process types."""
    app = current_app(app)
    show_limits(app, change(app, kind, {t: None for t in types}, "Applying limits..."))


commands = [limits_list, limits_set, limits_unset]
