"""auth:*: register, log in and out, change passwords, cancel accounts and regenerate tokens."""

from __future__ import annotations

import click

from ..client import NOT_LOGGED_IN, Client, normalize_url
from ..common import client
from ..errors import DeisError
from ..output import echo
from ..settings import Settings

ssl_option = click.option("--ssl-verify", type=click.Choice(["true", "false"]), default="true", show_default=True,
                          help="false disables TLS certificate verification for API requests.")


def reach(url: str, ssl_verify: str) -> Client:
    """A client for the controller at `url`, after checking it answers like one (401 on /v1/)."""
    url = normalize_url(url)
    c = Client(url, ssl_verify=ssl_verify == "true")
    answer = c.request("GET", "/v1/", ok=tuple(range(100, 600)))
    if answer.status_code != 401:
        raise DeisError(f"{url} does not appear to be a Deis controller (GET /v1/ answered "
                        f"{answer.status_code}, not 401). Check the URL and that the controller is running.")
    return c


def log_in(c: Client, username: str, password: str) -> None:
    token = c.request("POST", "/v1/auth/login/", data={"username": username, "password": password}).json()["token"]
    settings = Settings()
    settings.update(controller=c.controller, username=username, token=token, ssl_verify=c.session.verify)
    settings.save()
    echo(f"Logged in as {username}")


@click.command("auth:register")
@click.argument("controller", metavar="URL")
@click.option("--username", help="The new account's username (prompted when missing).")
@click.option("--password", help="The new account's password (prompted when missing).")
@click.option("--email", help="The new account's email address (prompted when missing).")
@click.option("--admin-token", help="The one-time admin token `deis-platform up` printed: the new user "
                                    "becomes the platform's administrator.")
@ssl_option
def auth_register(controller, username, password, email, admin_token, ssl_verify):
    """Register a new user with the controller at URL, then log in as them.

    Registering never makes an administrator, except with the one-time --admin-token that
    `deis-platform up` prints while the platform has none.
    """
    c = reach(controller, ssl_verify)
    username = username or click.prompt("username")
    password = password or click.prompt("password", hide_input=True, confirmation_prompt="password (confirm)")
    email = email if email is not None else click.prompt("email")
    settings = Settings()
    headers = {}
    if settings.get("token") and settings.get("controller") == c.controller:
        headers["Authorization"] = f"token {settings['token']}"  # admins may register users when others may not
    body = {"username": username, "password": password, "email": email}
    if admin_token:
        body["admin_token"] = admin_token
    c.request("POST", "/v1/auth/register", data=body, headers=headers)
    echo(f"Registered {username}")
    log_in(c, username, password)


@click.command("auth:login")
@click.argument("controller", metavar="[URL]", required=False)
@click.option("--username", help="Your username (prompted when missing).")
@click.option("--password", help="Your password (prompted when missing).")
@ssl_option
def auth_login(controller, username, password, ssl_verify):
    """Log in to the controller at URL (default: the one you last used)."""
    controller = controller or Settings().get("controller")
    if not controller:
        raise click.UsageError("Give the controller's URL: deis login http://127.0.0.1:8000")
    c = reach(controller, ssl_verify)
    username = username or click.prompt("username")
    password = password or click.prompt("password", hide_input=True)
    log_in(c, username, password)


@click.command("auth:logout")
def auth_logout():
    """Log out: forget the controller and token."""
    Settings().forget()
    echo("Logged out")


@click.command("auth:whoami")
def auth_whoami():
    """Show who you are logged in as, and where."""
    settings = Settings()
    if not settings.logged_in:
        raise DeisError(NOT_LOGGED_IN)
    echo(f"You are {settings.get('username')} at {settings['controller']}")


@click.command("auth:passwd")
@click.option("--password", help="Your current password (prompted when missing).")
@click.option("--new-password", help="The new password (prompted when missing).")
@click.option("--username", help="Admins: change this user's password instead of yours.")
def auth_passwd(password, new_password, username):
    """Change your password (admins: another user's, with --username)."""
    settings = Settings()
    c = client()
    if username and username != settings.get("username"):
        body = {"username": username}
    else:
        body = {"password": password or click.prompt("current password", hide_input=True)}
    body["new_password"] = new_password or click.prompt(
        "new password", hide_input=True, confirmation_prompt="new password (confirm)")
    token = c.post("/v1/auth/passwd", body).json().get("token")
    if token:  # the change ended every session of ours: carry on with the new token
        settings["token"] = token
        settings.save()
    echo("Password change succeeded.")


@click.command("auth:cancel")
@click.option("--username", help="Admins: cancel this user's account instead of yours.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def auth_cancel(username, yes):
    """Remove your account (admins: another user's, with --username)."""
    settings = Settings()
    c = client()
    username = username or settings.get("username")
    if not yes and not click.confirm(f'Cancel account "{username}" at {c.controller}?'):
        raise DeisError("Account not changed.")
    c.delete("/v1/auth/cancel", json={"username": username} if username else {})
    if username == settings.get("username"):
        settings.forget()
    echo("Account cancelled")


@click.command("auth:regenerate")
@click.option("-u", "--username", help="Admins: regenerate this user's token.")
@click.option("--all", "everyone", is_flag=True, help="Admins: regenerate every user's token.")
def auth_regenerate(username, everyone):
    """Regenerate your API token (admins: a user's, or everyone's); the old one stops working."""
    settings = Settings()
    body = {"all": True} if everyone else {"username": username} if username else {}
    token = client().post("/v1/auth/tokens/", body).json()["token"]
    if everyone or not username or username == settings.get("username"):
        settings["token"] = token
        settings.save()
    echo("Token regenerated.")


commands = [auth_register, auth_login, auth_logout, auth_whoami, auth_passwd, auth_cancel, auth_regenerate]
