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


def private_dir(path: Path) -> Path:
    """`path` made if missing (with its parents), and made the builder's alone (0700) either way."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def cache_path(data_dir: Path, app: str) -> Path:
    """The app's build cache, bind-mounted into its build containers (slug._create)."""
    repo_path(data_dir, app)  # checks the name
    return builder_dir(data_dir) / "cache" / app


def ensure_cache(data_dir: Path, app: str) -> Path:
    """The app's build cache, created if needed; it and its parent are private (0700)."""
    private_dir(builder_dir(data_dir) / "cache")
    return private_dir(cache_path(data_dir, app))


def remove_app(data_dir: Path, app: str) -> None:
    """`deis destroy`: everything the builder keeps of the app (repository, build cache, locks'
    files), so a new app of the same name starts from nothing."""
    import shutil

    for path in (repo_path(data_dir, app), cache_path(data_dir, app)):
        shutil.rmtree(path, ignore_errors=True)
    for name in (f"{app}.lock", f"{app}.init.lock"):
        (builder_dir(data_dir) / "locks" / name).unlink(missing_ok=True)


def repo_path(data_dir: Path, app: str) -> Path:
    if not APP_NAME.match(app) or len(app) > 63:
        raise ValueError(f"'{app}' is not an app name.")
    return builder_dir(data_dir) / "repos" / f"{app}.git"


def ensure_repo(data_dir: Path, app: str) -> Path:
    """The app's bare repository, created if needed, with the current pre-receive hook."""
    path, locks = repo_path(data_dir, app), private_dir(builder_dir(data_dir) / "locks")
    private_dir(path.parent)
    with open(locks / f"{app}.init.lock", "a") as lock:  # two first pushes at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "HEAD").exists():
            private_dir(path)  # others can read nothing of it, whatever git's umask
            subprocess.run(["git", "init", "--quiet", "--bare", "--", str(path)], check=True)
            # HEAD names master so a clone checks out what `git push deis master` sent.
            subprocess.run(["git", "-C", str(path), "symbolic-ref", "HEAD", "refs/heads/master"], check=True)
        path.chmod(0o700)  # also repositories made before it was so
        hook = path / "hooks" / "pre-receive"
        text = HOOK.format(python=sys.executable, client=HOOK_CLIENT)
        if not hook.exists() or hook.read_text() != text or hook.stat().st_mode & 0o077:
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(text)
            hook.chmod(0o700)
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
    private_dir(path.parent)
    lock = open(path, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock
