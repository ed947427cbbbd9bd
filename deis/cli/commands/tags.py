"""tags:*: key/value labels that constrain where an app's containers run."""

from __future__ import annotations

import click

from ..common import app_option, assignments, client, current_app
from ..output import aligned, heading
from .config import change


def show_tags(app: str, config: dict) -> None:
    heading(f"{app} Tags")
    aligned(config.get("tags") or {}, "No tags defined")


@click.command("tags:list")
@app_option
def tags_list(app):
    """List the tags of an app."""
    app = current_app(app)
    show_tags(app, client().get(f"/v1/apps/{app}/config").json())


@click.command("tags:set")
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@app_option
def tags_set(tags, app):
    """Set tags of an app, e.g. `deis tags:set environ=prod rack=1`."""
    values = assignments(tags)
    app = current_app(app)
    show_tags(app, change(app, "tags", values, "Applying tags..."))


@click.command("tags:unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@app_option
def tags_unset(keys, app):
    """Remove tags from an app."""
    app = current_app(app)
    show_tags(app, change(app, "tags", {k: None for k in keys}, "Applying tags..."))


commands = [tags_list, tags_set, tags_unset]
