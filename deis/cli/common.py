"""What most commands share: the --app option and finding the app, the client, KEY=VALUE arguments."""

from __future__ import annotations

import click

from . import gitrepo
from .client import Client
from .errors import DeisError
from .settings import Settings

app_option = click.option("-a", "--app", metavar="APP",
                          help="The app's name (default: the app of this git repository's `deis` remote).")


def current_app(app: str | None) -> str:
    """--app, else the app named by the `deis` git remote, else a clear error."""
    if app:
        return app.lower()
    found = gitrepo.app_from_remote("deis")
    if found:
        return found
    where = ("this git repository has no `deis` remote" if gitrepo.in_repository()
             else "this directory is not in a git repository")
    raise DeisError(f"No app given and {where}: use --app NAME "
                    "(or `deis git:remote --app NAME` inside your repository).")


def client() -> Client:
    return Client.from_settings(Settings())


def assignments(items: tuple[str, ...], form: str = "KEY=VALUE") -> dict[str, str]:
    """('A=1', 'B=x=y') -> {'A': '1', 'B': 'x=y'}; split on the first '='."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"Expected {form}, got '{item}'.")
        result[key] = value
    return result


def release_of(response) -> str:
    """The new release from the Deis-Release header ('3' or 'v3') as 'v3'."""
    return "v" + response.headers.get("Deis-Release", "?").lstrip("v")
