"""config:*: the environment variables of an app (each change makes a release), and .env files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..common import app_option, assignments, await_rollout, client, current_app, release_of
from ..errors import DeisError
from ..output import aligned, echo, heading, working


def show_config(app: str, values: dict, oneline: bool = False) -> None:
    if oneline:
        echo(" ".join(f"{k}={values[k]}" for k in sorted(values)) or "No configuration")
        return
    heading(f"{app} Config")
    aligned(values, "No configuration")


def change(app: str, what: str, changes: dict, message: str) -> dict:
    """POST one kind of config change (values, memory, cpu or tags); print `message done, vN`."""
    c = client()
    with working(message) as status:
        response = c.post(f"/v1/apps/{app}/config", {what: changes})
        await_rollout(c, app, response, status)
    echo(f"{message} done, {release_of(response)}")
    echo()
    return response.json()


def set_values(app: str, values: dict) -> None:
    config = change(app, "values", values, "Creating config...")
    show_config(app, config["values"])


def encode(value: str) -> str:
    """A .env value: as is, or double-quoted JSON when it would not survive a line of its own."""
    if "\n" in value or "\r" in value or value != value.strip() or value[:1] in "\"'":
        return json.dumps(value)
    return value


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, comments and `export ` prefixes are skipped or dropped."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            echo(f' !    {path}:{number}: could not parse config line "{line}"', err=True)
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@click.command("config:list")
@app_option
@click.option("--oneline", is_flag=True, help="Print KEY=VALUE pairs on one line.")
def config_list(app, oneline):
    """List the environment variables of an app."""
    app = current_app(app)
    show_config(app, client().get(f"/v1/apps/{app}/config").json()["values"], oneline)


@click.command("config:set")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@app_option
def config_set(pairs, app):
    """Set environment variables of an app: `deis config:set GREETING=hello 'MOTD=hi there'`."""
    values = assignments(pairs)
    set_values(current_app(app), values)


@click.command("config:unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@app_option
def config_unset(keys, app):
    """Remove environment variables from an app."""
    app = current_app(app)
    set_values(app, {key: None for key in keys})


@click.command("config:pull")
@app_option
@click.option("-i", "--interactive", is_flag=True, help="Ask before overwriting each value in .env.")
@click.option("-o", "--overwrite", is_flag=True, help="Overwrite values already in .env.")
def config_pull(app, interactive, overwrite):
    """Write an app's environment variables to .env (keeping local keys)."""
    app = current_app(app)
    remote = client().get(f"/v1/apps/{app}/config").json()["values"]
    path = Path(".env")
    local = read_env(path) if path.exists() else {}
    for key, value in remote.items():
        if key in local and local[key] != value and not overwrite:
            if not (interactive and click.confirm(f"overwrite {key} with {value}?")):
                continue
        local[key] = value
    try:
        path.write_text("".join(f"{key}={encode(local[key])}\n" for key in sorted(local)))
    except OSError as exc:
        raise DeisError(f"could not write {path}: {exc.strerror}")
    echo(f"Wrote {len(local)} config values to {path}")


@click.command("config:push")
@app_option
@click.option("-p", "--path", default=".env", show_default=True, type=click.Path(dir_okay=False),
              help="The environment file to read.")
def config_push(app, path):
    """Set an app's environment variables from a .env file."""
    app = current_app(app)
    try:
        values = read_env(Path(path))
    except OSError as exc:
        raise DeisError(f"could not read env from {path}: {exc.strerror}")
    if not values:
        raise DeisError(f"{path} holds no KEY=VALUE lines.")
    set_values(app, values)


commands = [config_list, config_set, config_unset, config_pull, config_push]
