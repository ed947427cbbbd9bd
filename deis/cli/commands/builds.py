"""builds:*: an app's builds, and deploying an existing Docker image (`deis pull`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..common import app_option, await_rollout, client, current_app, release_of
from ..errors import DeisError
from ..output import echo, fields, heading, table, working

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.+)$")


def parse_procfile(text: str, origin: str) -> dict[str, str]:
    """`type: command` lines (a JSON object is accepted too)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DeisError(f"could not parse {origin}: {exc}")
    procfile = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line.strip())
        if not match:
            raise DeisError(f"could not parse {origin}: expected `type: command`, got '{line.strip()}'")
        procfile[match.group(1)] = match.group(2).strip()
    return procfile


def has_tag(image: str) -> bool:
    """Whether the image names a tag or digest (a colon after the last slash, or @)."""
    return "@" in image or ":" in image.rsplit("/", 1)[-1]


@click.command("builds:list")
@app_option
def builds_list(app):
    """List the builds of an app, newest first."""
    app = current_app(app)
    builds = client().results(f"/v1/apps/{app}/builds")
    heading(f"{app} Builds")
    if not builds:
        echo("No builds yet: deploy with `git push deis master` or `deis pull IMAGE`.")
        return
    table(["UUID", "Image", "Owner", "Created"],
          [[b["uuid"], b["image"] or ("(failed)" if b.get("failed") else ""), b["owner"], b["created"]]
           for b in builds])


@click.command("builds:create")
@click.argument("image")
@app_option
@click.option("-p", "--procfile", help="Process types as `type: command` lines (default: ./Procfile if present).")
def builds_create(image, app, procfile):
    """Deploy an existing Docker image (with its tag, e.g. deis/example-go:latest) as a new release."""
    if not has_tag(image):
        raise click.UsageError("IMAGE must include a tag, e.g. deis/example-go:latest")
    app = current_app(app)
    body = {"image": image}
    if procfile:
        body["procfile"] = parse_procfile(procfile, "--procfile")
    elif Path("Procfile").is_file():
        body["procfile"] = parse_procfile(Path("Procfile").read_text(), "Procfile")
    c = client()
    with working("Creating build...") as status:
        response = c.post(f"/v1/apps/{app}/builds", body)
        await_rollout(c, app, response, status)
    echo(f"Creating build... done, {release_of(response)}")


@click.command("builds:info")
@click.argument("uuid")
@app_option
def builds_info(uuid, app):
    """Show one build of an app."""
    app = current_app(app)
    build = client().get(f"/v1/apps/{app}/builds/{uuid}").json()
    heading(f"{app} Build {uuid}")
    fields(build, ["uuid", "owner", "image", "sha", "procfile", "failed", "created", "updated"])
    if build.get("log"):
        heading("Log")
        echo(build["log"].rstrip("\n"))


commands = [builds_list, builds_create, builds_info]
