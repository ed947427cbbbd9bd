"""apps:*: create, list, inspect, open, read the logs of, run commands in, transfer and destroy apps."""

from __future__ import annotations

import json
import time
import webbrowser

import click

from .. import gitrepo
from ..client import controller_host
from ..common import app_option, client, current_app
from ..errors import DeisError
from ..output import echo, fields, heading, table, working
from .git import attach_remote
from .ps import show_processes


@click.command("apps:create")
@click.argument("name", required=False)
@click.option("--no-remote", is_flag=True, help="Do not create a `deis` git remote.")
@click.option("-r", "--remote", default="deis", show_default=True, help="Name of the git remote to create.")
@click.option("-b", "--buildpack", metavar="URL", help="A buildpack URL to use for this app (sets BUILDPACK_URL).")
def apps_create(name, no_remote, remote, buildpack):
    """Create an app; without NAME the controller picks one (like wiggly-tapir).

    Inside a git repository, adds the remote `deis` so that `git push deis master` deploys.
    """
    c = client()
    with working("Creating Application..."):
        app = c.post("/v1/apps", {"id": name} if name else {}).json()["id"]
    echo(f"Creating Application... done, created {app}")
    if buildpack:
        c.post(f"/v1/apps/{app}/config", {"values": {"BUILDPACK_URL": buildpack}})
        echo(f"BUILDPACK_URL set to {buildpack}")
    if no_remote:
        echo(f"remote available at {gitrepo.remote_for(controller_host(c.controller), app)}")
    else:
        attach_remote(app, c.controller, remote, strict=False)


@click.command("apps:list")
def apps_list():
    """List the apps you own, share or (as an admin) administer."""
    apps = client().results("/v1/apps")
    heading("Apps")
    if not apps:
        echo("No apps yet: create one with `deis create`.")
        return
    table(["App", "Owner", "URL"], [[a["id"], a["owner"], a.get("url")] for a in apps])


@click.command("apps:info")
@app_option
def apps_info(app):
    """Show an app: owner, URL, processes and domains."""
    app = current_app(app)
    c = client()
    data = c.get(f"/v1/apps/{app}").json()
    heading(f"{app} Application")
    fields(data, ["uuid", "id", "owner", "url", "structure", "created", "updated"])
    echo()
    try:
        show_processes(c, app)
    except DeisError as exc:
        heading(f"{app} Processes")
        echo(exc.message)
    echo()
    show_domains(c, app)


def show_domains(c, app: str) -> None:
    domains = c.results(f"/v1/apps/{app}/domains")
    heading(f"{app} Domains")
    for domain in domains:
        echo(domain["domain"])
    if not domains:
        echo("No domains")


@click.command("apps:open")
@app_option
def apps_open(app):
    """Open the app's URL in a browser."""
    app = current_app(app)
    url = f"http://{client().get(f'/v1/apps/{app}').json()['url']}/"
    echo(f"Opening {url}")
    if not webbrowser.open(url):
        echo(f"No browser found: open {url} yourself.", err=True)


def unseen(previous: list[str], current: list[str]) -> list[str]:
    """The lines of `current` after where `previous` (an earlier window of the same log) ends."""
    for overlap in range(min(len(previous), len(current)), 0, -1):
        if previous[-overlap:] == current[:overlap]:
            return current[overlap:]
    return current


def fetch_logs(c, app: str, lines: int) -> list[str]:
    response = c.get(f"/v1/apps/{app}/logs", params={"log_lines": lines})
    if response.status_code == 204 or not response.content:
        return []
    try:
        text = response.json()
    except ValueError:
        text = response.text
    if not isinstance(text, str):
        text = "\n".join(map(str, text))
    return text.splitlines()


@click.command("apps:logs")
@app_option
@click.option("-n", "--lines", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="How many of the newest lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they come (Ctrl-C stops).")
def apps_logs(app, lines, follow):
    """Show the newest log lines of an app's processes."""
    app = current_app(app)
    c = client()
    shown = fetch_logs(c, app, lines)
    for line in shown:
        echo(line)
    try:
        while follow:
            time.sleep(1)
            latest = fetch_logs(c, app, lines)
            for line in unseen(shown, latest):
                echo(line)
            shown = latest or shown
    except KeyboardInterrupt:
        return


JOB_POLL = 0.25  # s between reads of a one-off's output


@click.command("apps:run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@app_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def apps_run(ctx, app, command):
    """Run a command in a one-off container of the app; exits with the command's exit code.

    Put options of deis before the command: `deis run -a myapp python manage.py migrate`.
    """
    app = current_app(app)
    line = " ".join(command)
    echo(f"Running `{line}`...", err=True)
    c = client()
    started = c.request("POST", f"/v1/apps/{app}/jobs", ok=(201, 404, 405), json={"command": line})
    if started.status_code != 201:  # a controller without jobs: it runs the command within the request
        answer = c.post(f"/v1/apps/{app}/run", {"command": line}).json()
        try:
            exit_code, output = answer
        except (TypeError, ValueError):
            raise DeisError(f"unexpected answer from the controller: {json.dumps(answer)[:200]}")
        echo(output, nl=False)
        ctx.exit(int(exit_code))
    job = started.json()
    try:
        while True:
            echo(job.get("output", ""), nl=False)
            if job["state"] not in ("pending", "running"):
                break
            time.sleep(JOB_POLL)
            job = c.get(f"/v1/apps/{app}/jobs/{job['uuid']}?offset={job['offset']}").json()
    except KeyboardInterrupt:
        echo(f"\nStopped following; the one-off goes on (job {job['uuid']}).", err=True)
        ctx.exit(130)
    ctx.exit(int(job["exit_code"]) if job.get("exit_code") is not None else 1)


@click.command("apps:destroy")
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt: give the app's name again.")
def apps_destroy(app, confirm):
    """Destroy an app and everything it runs."""
    inferred = not app
    app = current_app(app)
    if confirm != app:
        echo(f""" !    WARNING: Potentially Destructive Action
 !    This command will destroy the application: {app}
 !    To proceed, type "{app}" or re-run this command with --confirm={app}
""", err=True)
        if click.prompt(">", default="", show_default=False, prompt_suffix=" ").strip() != app:
            raise DeisError("Destroy aborted: the name did not match.")
    c = client()
    started = time.monotonic()
    with working(f"Destroying {app}..."):
        c.delete(f"/v1/apps/{app}")
    echo(f"Destroying {app}... done in {int(time.monotonic() - started)}s")
    if inferred and gitrepo.remove_remote("deis"):
        echo("Git remote deis removed")


@click.command("apps:transfer")
@click.argument("username")
@app_option
def apps_transfer(username, app):
    """Make another user the owner of an app."""
    app = current_app(app)
    client().post(f"/v1/apps/{app}", {"owner": username})
    echo(f"Transferring {app} to {username}... done")


commands = [apps_create, apps_list, apps_info, apps_open, apps_logs, apps_run, apps_destroy, apps_transfer]
