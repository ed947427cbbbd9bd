"""The apps' bare git repositories: `<data_dir>/builder/repos/<app>.git`, made on an app's first
push, each with the pre-receive hook that builds and deploys before git accepts the push."""

from __future__ import annotations

import fcntl
import re
import subprocess
import sys
from pathlib import Path

# The controller's app names (lower-case letters, digits, single dashes): safe as a path component.
APP_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
ZERO = "0" * 40

HOOK = """#!/bin/sh
# Installed by the Deis builder: its server builds and deploys the pushed commit; a non-zero exit
# rejects the push.
exec "{python}" -I -S "{client}"
"""
HOOK_CLIENT = Path(__file__).resolve().with_name("prereceive.py")


def builder_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "builder"


def scratch_dir(data_dir: Path) -> Path:
    """The builder server's scratch folders (checkouts, config-var folders of build containers): one
    root of its own, which its next start clears, so a killed builder leaves none behind."""
    return builder_dir(data_dir) / "tmp"


def repo_path(data_dir: Path, app: str) -> Path:
    if not APP_NAME.match(app) or len(app) > 63:
        raise ValueError(f"'{app}' is not an app name.")
    return builder_dir(data_dir) / "repos" / f"{app}.git"


def ensure_repo(data_dir: Path, app: str) -> Path:
    """The app's bare repository, created if needed, with the current pre-receive hook."""
    path, locks = repo_path(data_dir, app), builder_dir(data_dir) / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{app}.init.lock", "a") as lock:  # two first pushes at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "HEAD").exists():
            subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
            # HEAD names master so a clone checks out what `git push deis master` sent.
            subprocess.run(["git", "-C", str(path), "symbolic-ref", "HEAD", "refs/heads/master"], check=True)
        hook = path / "hooks" / "pre-receive"
        text = HOOK.format(python=sys.executable, client=HOOK_CLIENT)
        if not hook.exists() or hook.read_text() != text:
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(text)
            hook.chmod(0o755)
    return path


def has_commits(path: Path) -> bool:
    """Whether the repository has any branch to clone or fetch."""
    if not (path / "HEAD").exists():
        return False
    refs = subprocess.run(["git", "-C", str(path), "for-each-ref", "--count=1", "refs/heads/"],
                          capture_output=True, text=True)
    return bool(refs.stdout.strip())


def acquire_app_lock(data_dir: Path, app: str, output=None):
    """Hold the app's build lock (an flock on `<data_dir>/builder/locks/<app>.lock`), waiting for
    another push to the app to finish first. Returns the open file: the lock lives as long as it."""
    repo_path(data_dir, app)  # checks the name
    path = builder_dir(data_dir) / "locks" / f"{app}.lock"
    lock = try_lock(path)
    if lock is None:
        if output:
            output(f"       another push to {app} is building; waiting...")
        lock = open(path, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def try_lock(path: Path):
    """An flock on `path` unless another process holds it (then None). Returns the open file: the
    lock lives as long as it, or as its process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock
