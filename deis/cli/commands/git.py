"""git:remote: point a git remote of this repository at an app, so `git push deis master` deploys."""

from __future__ import annotations

import click

from .. import gitrepo
from ..client import controller_host
from ..common import app_option, client, current_app
from ..errors import DeisError
from ..output import echo


def attach_remote(app: str, controller: str, name: str, strict: bool) -> None:
    """Add remote `name` for `app`; when it exists already, fail if `strict`, else only warn."""
    url = gitrepo.remote_for(controller_host(controller), app)
    if not gitrepo.in_repository():
        echo(f"Not in a git repository: remote available at {url}")
        return
    existing = gitrepo.remote_url(name)
    if existing == url:
        echo(f"Git remote {name} already points to {url}")
        return
    if existing:
        message = (f"git remote {name} exists already ({existing}); remove it with `git remote remove {name}` "
                   "or choose another name with --remote")
        if strict:
            raise DeisError(message)
        echo(f" !    {message}. Remote available at {url}", err=True)
        return
    problem = gitrepo.add_remote(name, url)
    if problem:
        raise DeisError(f"could not add git remote {name}: {problem}")
    echo(f"Git remote {name} added")


@click.command("git:remote")
@app_option
@click.option("-r", "--remote", default="deis", show_default=True, help="Name of the remote to create.")
def git_remote(app, remote):
    """Add a git remote for an app to this repository."""
    app = current_app(app)
    c = client()
    c.get(f"/v1/apps/{app}")
    attach_remote(app, c.controller, remote, strict=True)


commands = [git_remote]
