"""What most commands share: the --app option and finding the app, the client, KEY=VALUE arguments."""

from __future__ import annotations

import time

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


ROLLOUT_WAIT = 30 * 60  # s the CLI waits for a rollout before it gives up waiting (the rollout goes on)
ROLLOUT_POLL = 0.3


def await_rollout(c: Client, app: str, response, status=None) -> dict | None:
    """After a change the controller recorded: wait until the platform rolled it out, showing its
    steps on the spinner (`status`). The rollout, or None from a controller that deploys within
    its answer (no Deis-Rollout header); DeisError with the reason when it failed."""
    generation = int(response.headers.get("Deis-Rollout") or 0)
    if not generation:
        return None
    deadline = time.monotonic() + ROLLOUT_WAIT
    while True:
        rollout = c.get(f"/v1/apps/{app}/rollout").json()
        if rollout.get("observed", 0) >= generation and rollout.get("phase") in ("deployed", "failed"):
            break
        if time.monotonic() > deadline:
            raise DeisError(f"{app} is still being deployed ({rollout.get('phase')}); "
                            f"see `deis releases -a {app}` and `deis ps -a {app}` for how it ends.")
        if status is not None and rollout.get("steps"):
            status.update(rollout["steps"][-1][1])
        time.sleep(ROLLOUT_POLL)
    if rollout["phase"] == "failed":
        raise DeisError(rollout.get("error") or f"the rollout of {app} failed")
    return rollout
