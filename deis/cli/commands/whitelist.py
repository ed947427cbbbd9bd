"""whitelist:*: the networks whose clients may use an app (others are answered 403); none: everybody."""

from __future__ import annotations

import click

from ..common import app_option, client, current_app
from ..output import echo, heading
from .maintenance import saying

ADDRESSES = "ADDRESS[,ADDRESS...]"


def whitelist_path(app: str) -> str:
    return f"/v1/apps/{app}/whitelist/"


def addresses_of(items: tuple[str, ...]) -> list[str]:
    """('10.0.0.0/8,192.0.2.7', '2001:db8::/32') -> each address, as Workflow's CLI splits them."""
    addresses = [a.strip() for item in items for a in item.split(",") if a.strip()]
    if not addresses:
        raise click.UsageError(f"Give the addresses or networks as {ADDRESSES}, like 10.0.0.0/8,203.0.113.7.")
    return addresses


@click.command("whitelist:list")
@app_option
def whitelist_list(app):
    """List the addresses allowed to use an app."""
    app = current_app(app)
    addresses = client().get(whitelist_path(app)).json().get("addresses") or []
    heading(f"{app} Whitelisted Addresses")
    for address in addresses:
        echo(address)
    if not addresses:
        echo(f"No addresses: everybody may use {app}")


@click.command("whitelist:add")
@click.argument("addresses", nargs=-1, required=True, metavar=ADDRESSES)
@app_option
def whitelist_add(addresses, app):
    """Allow only these addresses or networks (and those allowed already) to use an app,
    e.g. `deis whitelist:add 10.0.0.0/8,203.0.113.7`."""
    addresses = addresses_of(addresses)
    app = current_app(app)
    saying(f"Adding {', '.join(addresses)} to {app} whitelist...",
           lambda: client().post(whitelist_path(app), {"addresses": addresses}))


@click.command("whitelist:remove")
@click.argument("addresses", nargs=-1, required=True, metavar=ADDRESSES)
@app_option
def whitelist_remove(addresses, app):
    """Remove addresses or networks from an app's whitelist (an empty one lets everybody in)."""
    addresses = addresses_of(addresses)
    app = current_app(app)
    saying(f"Removing {', '.join(addresses)} from {app} whitelist...",
           lambda: client().delete(whitelist_path(app), json={"addresses": addresses}))


commands = [whitelist_list, whitelist_add, whitelist_remove]
