"""certs:*: TLS certificates for the domains of your apps."""

from __future__ import annotations

from pathlib import Path

import click

from ..common import client
from ..errors import DeisError
from ..output import echo, fields, heading, table, working


def read_pem(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise DeisError(f"could not read {path}: {exc.strerror}")


@click.command("certs:list")
def certs_list():
    """List your certificates."""
    certs = client().results("/v1/certs")
    if not certs:
        echo("No certs")
        return
    table(["Common Name", "Expires"], [[c["common_name"], c["expires"]] for c in certs])


@click.command("certs:add")
@click.argument("cert", type=click.Path(dir_okay=False))
@click.argument("key", type=click.Path(dir_okay=False))
@click.option("--common-name", help="The host name it serves (default: read from the certificate).")
@click.option("--subject-alt-names", metavar="NAMES", help="Also add it for these comma-separated names.")
def certs_add(cert, key, common_name, subject_alt_names):
    """Add a certificate (CERT, a PEM file) with its private KEY."""
    body = {"certificate": read_pem(cert), "key": read_pem(key)}
    names = [common_name] + [n.strip() for n in (subject_alt_names or "").split(",") if n.strip()]
    c = client()
    for name in names:
        message = f"Adding SSL endpoint {name}..." if name else "Adding SSL endpoint..."
        with working(message):
            added = c.post("/v1/certs", {**body, "common_name": name} if name else body).json()
        echo(f"{message} done" + ("" if name else f"\n{added['common_name']}"))


@click.command("certs:info")
@click.argument("common_name")
def certs_info(common_name):
    """Show the certificate for a common name."""
    cert = client().get(f"/v1/certs/{common_name}").json()
    heading(f"{cert['common_name']} Certificate")
    shown = {**cert, "domains": ", ".join(cert.get("domains") or []) or "(none: not served)"}
    fields(shown, ["common_name", "expires", "owner", "created", "updated", "domains"])


@click.command("certs:remove")
@click.argument("common_name")
def certs_remove(common_name):
    """Remove the certificate for a common name."""
    with working(f"Removing {common_name}..."):
        client().delete(f"/v1/certs/{common_name}")
    echo(f"Removing {common_name}... done")


@click.command("certs:attach")
@click.argument("name")
@click.argument("domain")
def certs_attach(name, domain):
    """Serve the certificate NAME for DOMAIN (a domain of your app that it covers)."""
    with working(f"Attaching certificate {name} to domain {domain}..."):
        client().post(f"/v1/certs/{name}/domain/", {"domain": domain})
    echo(f"Attaching certificate {name} to domain {domain}... done")


@click.command("certs:detach")
@click.argument("name")
@click.argument("domain")
def certs_detach(name, domain):
    """Stop serving the certificate NAME for DOMAIN."""
    with working(f"Detaching certificate {name} from domain {domain}..."):
        client().delete(f"/v1/certs/{name}/domain/{domain}")
    echo(f"Detaching certificate {name} from domain {domain}... done")


commands = [certs_list, certs_add, certs_info, certs_remove, certs_attach, certs_detach]
