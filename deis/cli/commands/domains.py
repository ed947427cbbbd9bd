"""domains:*: the host names an app answers to besides its own."""

from __future__ import annotations

import click

from ..common import app_option, client, current_app
from ..output import echo, working
from .apps import show_domains


@click.command("domains:list")
@app_option
def domains_list(app):
    """List the domains of an app."""
    app = current_app(app)
    show_domains(client(), app)


@click.command("domains:add")
@click.argument("domain")
@app_option
def domains_add(domain, app):
    """Point a domain at an app, e.g. `deis domains:add www.example.com`."""
    app = current_app(app)
    message = f"Adding {domain} to {app}..."
    with working(message):
        client().post(f"/v1/apps/{app}/domains", {"domain": domain})
    echo(f"{message} done")


@click.command("domains:remove")
@click.argument("domain")
@app_option
def domains_remove(domain, app):
    """Remove a domain from an app."""
    app = current_app(app)
    message = f"Removing {domain} from {app}..."
    with working(message):
        client().delete(f"/v1/apps/{app}/domains/{domain}")
    echo(f"{message} done")


commands = [domains_list, domains_add, domains_remove]
