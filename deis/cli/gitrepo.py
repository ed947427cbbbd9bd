"""The git side of the client: the `deis` remote names the app of the repository it is in."""

from __future__ import annotations

import os
import re
import subprocess

REMOTE_APP = re.compile(r"[:/](?P<app>[a-z0-9-]+?)(?:\.git)?/?$")


def git(*args: str) -> subprocess.CompletedProcess | None:
    """Run git quietly; None when git is not installed."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True)
    except FileNotFoundError:
        return None


def in_repository() -> bool:
    result = git("rev-parse", "--show-toplevel")
    return bool(result and result.returncode == 0)


def remote_url(name: str) -> str | None:
    result = git("config", "--get", f"remote.{name}.url")
    return result.stdout.strip() if result and result.returncode == 0 else None


def app_from_remote(name: str = "deis") -> str | None:
    """The app name in a remote like ssh://git@host:2222/<app>.git."""
    url = remote_url(name)
    match = REMOTE_APP.search(url) if url else None
    return match.group("app") if match else None


def remote_for(host: str, app: str) -> str:
    """The builder listens on port 2222 of the controller's host (DEIS_BUILDER_PORT when moved)."""
    port = os.environ.get("DEIS_BUILDER_PORT", "2222")
    return f"ssh://git@{host}:{port}/{app}.git"


def add_remote(name: str, url: str) -> str | None:
    """Add the remote; returns git's complaint on failure."""
    result = git("remote", "add", name, url)
    if result is None:
        return "git is not installed"
    if result.returncode:
        return result.stderr.strip() or "git remote add failed"
    return None


def remove_remote(name: str) -> bool:
    result = git("remote", "remove", name)
    return bool(result and result.returncode == 0)
