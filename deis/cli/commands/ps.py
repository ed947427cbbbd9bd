"""ps:list, ps:scale and ps:restart: the processes serving an app."""

from __future__ import annotations

import os
import time

import click

from ..common import app_option, assignments, await_rollout, client, current_app
from ..output import echo, heading, working


def coffee(action: str) -> str:
    return f"{action} processes... but first, {os.environ.get('DEIS_DRINK_OF_CHOICE', 'coffee')}!"


def show_processes(c, app: str) -> None:
    """=== app Processes, then per type `--- web:` and `web.1 up (v2)` lines."""
    processes = c.results(f"/v1/apps/{app}/containers")
    heading(f"{app} Processes")
    if not processes:
        echo("No processes running.")
    by_type: dict[str, list] = {}
    for proc in processes:
        by_type.setdefault(proc["type"], []).append(proc)
    for index, ptype in enumerate(sorted(by_type)):
        if index:
            echo()
        echo(f"--- {ptype}:")
        for proc in sorted(by_type[ptype], key=lambda p: int(p.get("num") or 0)):
            why = f": {last_exit_text(proc['last_exit'])}" if proc["state"] == "crashed" and proc.get("last_exit") else ""
            echo(f"{proc['type']}.{proc['num']} {proc['state']} ({proc['release']}){why}")


def last_exit_text(last_exit: dict) -> str:
    """`ran out of memory at 2026-12-01 10:01:02 UTC` or `exited with code 3 at ...`."""
    if last_exit.get("reason") == "oom":
        how = "ran out of memory"
    elif last_exit.get("exit_code") is not None:
        how = f"exited with code {last_exit['exit_code']}"
    else:
        how = "exited"
    at = (last_exit.get("at") or "").replace("T", " ")[:19]
    return f"{how} at {at} UTC" if at else how


@click.command("ps:list")
@app_option
def ps_list(app):
    """List the processes serving an app."""
    app = current_app(app)
    show_processes(client(), app)


@click.command("ps:scale")
@click.argument("counts", nargs=-1, required=True, metavar="TYPE=NUM...")
@app_option
def ps_scale(counts, app):
    """Scale processes by type, e.g. `deis ps:scale web=3 worker=1`."""
    body = {}
    for ptype, count in assignments(counts, "TYPE=NUM").items():
        if not count.isdigit():
            raise click.UsageError(f"The count of {ptype} must be a whole number, got '{count}'.")
        body[ptype] = int(count)
    app = current_app(app)
    c = client()
    message = coffee("Scaling")
    started = time.monotonic()
    with working(message) as status:
        await_rollout(c, app, c.post(f"/v1/apps/{app}/scale", body), status)
    echo(f"{message}  done in {int(time.monotonic() - started)}s")
    echo()
    show_processes(c, app)


@click.command("ps:restart")
@click.argument("target", required=False, metavar="[TYPE[.NUM]]")
@app_option
def ps_restart(target, app):
    """Restart all processes of an app, one type (web) or one process (web.2)."""
    app = current_app(app)
    path = f"/v1/apps/{app}/containers"
    if target:
        ptype, _, num = target.partition(".")
        if num and not num.isdigit():
            raise click.UsageError(f"Expected TYPE or TYPE.NUM like web.2, got '{target}'.")
        path += f"/{ptype}" + (f"/{num}" if num else "")
    c = client()
    message = coffee("Restarting")
    started = time.monotonic()
    with working(message) as status:
        await_rollout(c, app, c.post(f"{path}/restart"), status)
    echo(f"{message}  done in {int(time.monotonic() - started)}s")
    echo()
    show_processes(c, app)


commands = [ps_list, ps_scale, ps_restart]
