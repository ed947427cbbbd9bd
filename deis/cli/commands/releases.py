"""releases:*: an app's release history, and rolling back to an earlier release."""

from __future__ import annotations

import click

from ..common import app_option, await_rollout, client, current_app
from ..output import ago, echo, fields, heading, working


def version_number(version: str) -> int:
    number = version.lower().removeprefix("v")
    if not number.isdigit():
        raise click.UsageError(f"Expected a release like v3, got '{version}'.")
    return int(number)


@click.command("releases:list")
@app_option
def releases_list(app):
    """List the releases of an app, newest first."""
    app = current_app(app)
    releases = client().results(f"/v1/apps/{app}/releases")
    heading(f"{app} Releases")
    for release in releases:
        failed = f" (failed: {(release.get('failure') or 'did not deploy').splitlines()[0]})" \
            if release.get("failed") else ""
        state = release.get("state")
        going = f" ({state})" if state in ("pending", "deploying", "superseded") else ""
        echo(f"v{release['version']:<6} {ago(release['created']):<28} {release['summary']}{failed}{going}")


@click.command("releases:info")
@click.argument("version")
@app_option
def releases_info(version, app):
    """Show one release of an app, e.g. `deis releases:info v3`."""
    app = current_app(app)
    number = version_number(version)
    release = client().get(f"/v1/apps/{app}/releases/v{number}").json()
    heading(f"{app} Release v{number}")
    fields(release, ["version", "summary", "owner", "build", "config", "state", "failed", "failure", "created",
                     "uuid"])


@click.command("releases:rollback")
@click.argument("version", required=False)
@app_option
def releases_rollback(version, app):
    """Roll back to an earlier release (default: the one before the current) as a new release."""
    app = current_app(app)
    body = {"version": version_number(version)} if version else {}
    message = f"Rolling back to v{body['version']}..." if version else "Rolling back one release..."
    c = client()
    with working(message) as status:
        response = c.post(f"/v1/apps/{app}/releases/rollback", body)
        new = response.json()["version"]
        await_rollout(c, app, response, status)
    echo(f"{message} done, v{new}")


commands = [releases_list, releases_info, releases_rollback]
