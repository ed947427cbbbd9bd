"""The `deis` command: a click group that reads the Deis v1 grammar, `deis <topic>:<command>`.

Commands are registered under their full names (apps:create); shortcuts (create) and bare topics
(apps = apps:list) are resolved in `get_command`.
"""

from __future__ import annotations

import os
import sys

import click

from deis import API_VERSION, __version__

from .commands import (apps, auth, builds, certs, config, domains, git, keys, limits, maintenance, metrics, perms, ps,
                       releases, tags, users, whitelist)
from .output import echo

TOPICS = {
    "auth": "manage your account: register, login, logout, passwd, whoami, cancel, regenerate",
    "apps": "manage applications used to provide services",
    "ps": "manage processes inside an app container",
    "config": "manage environment variables that define app config",
    "domains": "manage and assign domain names to your applications",
    "maintenance": "enable or disable maintenance mode for an app",
    "whitelist": "manage the addresses allowed to use an app",
    "builds": "manage builds created using `git push`",
    "limits": "manage resource limits for your application",
    "metrics": "show the requests an app served and what its processes use",
    "tags": "manage tags for application containers",
    "releases": "manage releases of an application",
    "certs": "manage SSL endpoints for an app",
    "keys": "manage ssh keys used for `git push` deployments",
    "perms": "manage permissions for applications",
    "git": "manage git for applications",
    "users": "manage users",
}

SHORTCUTS = {
    "create": "apps:create",
    "destroy": "apps:destroy",
    "info": "apps:info",
    "login": "auth:login",
    "logout": "auth:logout",
    "logs": "apps:logs",
    "open": "apps:open",
    "passwd": "auth:passwd",
    "pull": "builds:create",
    "register": "auth:register",
    "rollback": "releases:rollback",
    "run": "apps:run",
    "scale": "ps:scale",
    "sharing": "perms:list",
    "sharing:list": "perms:list",
    "sharing:add": "perms:create",
    "sharing:remove": "perms:delete",
    "whoami": "auth:whoami",
}


def show_help():
    echo(click.get_current_context().get_help())


class TopicCommand(click.Command):
    """A bare topic (`deis apps`): runs the topic's list command; its help lists the topic's commands."""

    def __init__(self, name: str, commands: list[click.Command], listing: click.Command | None):
        super().__init__(name, help=TOPICS[name].capitalize() + ".",
                         params=list(listing.params) if listing else [],
                         callback=listing.callback if listing else show_help,
                         context_settings=listing.context_settings if listing else None)
        self.topic_commands = commands

    def format_epilog(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(c.name, c.get_short_help_str(limit=200)) for c in self.topic_commands])
        formatter.write_paragraph()
        formatter.write_text(f"`deis {self.name}:COMMAND --help` tells more about each.")


class DeisGroup(click.Group):
    def get_command(self, ctx, name):
        name = SHORTCUTS.get(name, name)
        if name in TOPICS:
            topic = [self.commands[n] for n in sorted(self.commands) if n.startswith(name + ":")]
            return TopicCommand(name, topic, self.commands.get(f"{name}:list"))
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        with formatter.section("Auth commands"):
            formatter.write_dl([(n, self.commands[SHORTCUTS[n]].get_short_help_str(limit=200))
                                for n in ("register", "login", "logout", "whoami")])
        with formatter.section("Topics (`deis TOPIC --help` lists the commands of each)"):
            formatter.write_dl(list(TOPICS.items()))
        with formatter.section("Shortcuts"):
            formatter.write_dl([(n, f"= {target}") for n, target in SHORTCUTS.items() if ":" not in n])
        formatter.write_paragraph()
        formatter.write_text("Use `git push deis master` to deploy to an application.")


@click.group(cls=DeisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deis", message=f"%(prog)s %(version)s (API {API_VERSION})")
def cli():
    """The Deis command-line client: `deis TOPIC:COMMAND [ARGS]`, e.g. `deis apps:create`."""


@cli.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_command(ctx, command):
    """Show the help of deis, or of a command: `deis help config:set`."""
    root = ctx.parent
    if not command:
        echo(root.get_help())
        return
    target = root.command.get_command(root, command)
    if target is None:
        raise click.UsageError(f"No such command '{command}'.")
    with click.Context(target, info_name=command, parent=root) as sub:
        echo(sub.get_help())


@cli.command("shortcuts")
def shortcuts():
    """List the shortcuts for longer commands."""
    echo("Valid shortcuts are:\n")
    for name, target in SHORTCUTS.items():
        echo(f"{name:<15} -> {target}")


for module in (apps, auth, builds, certs, config, domains, git, keys, limits, maintenance, metrics, perms, ps, releases,
               tags, users, whitelist):
    for command in module.commands:
        cli.add_command(command)


def main() -> None:
    """Run `deis`; every failure ends as 'Error: ...' on stderr and exit code 1, never a traceback."""
    try:
        code = cli.main(prog_name="deis", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        echo(exc.ctx.get_help())
        code = 0
    except click.ClickException as exc:
        exc.show()
        code = 1
    except click.Abort:
        echo("Aborted.", err=True)
        code = 1
    except Exception as exc:
        if os.environ.get("DEIS_DEBUG"):
            raise
        echo(f"Error: unexpected {type(exc).__name__}: {exc} (set DEIS_DEBUG=1 to see where)", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
