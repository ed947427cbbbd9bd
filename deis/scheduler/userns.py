"""Who container root is on the host: with dockerd's `userns-remap`, an unprivileged uid.

Root in a container is not root on the host (scripts/docker.sh turns the remapping on), so a host
directory bind-mounted into a container (a build cache, a build's config files) must belong to
that uid: container root can use it, and nobody else on the host can read it."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

_known: dict[str, tuple[int, int]] = {}
_guard = threading.Lock()


def container_root(client) -> tuple[int, int]:
    """(uid, gid) on the host of root in this engine's containers: (0, 0) without remapping.

    The engine names its remapped data directory `<root>/<uid>.<gid>`; asked once per engine."""
    key = str(getattr(getattr(client, "api", None), "base_url", id(client)))
    with _guard:
        if key in _known:
            return _known[key]
    info = client.info()
    ids = (0, 0)
    if any("name=userns" in option for option in info.get("SecurityOptions") or []):
        match = re.search(r"/(\d+)\.(\d+)/?$", info.get("DockerRootDir") or "")
        if match:
            ids = (int(match.group(1)), int(match.group(2)))
    with _guard:
        _known[key] = ids
    return ids


def remapped(client) -> bool:
    return container_root(client) != (0, 0)


def hand_over(path: Path | str, client, always: bool = False) -> None:
    """Make `path` (and everything below it) container root's, private to it (0700 / 0600).

    A directory that is container root's already is left as it is: what is below it was written
    by container root (a build cache), so a warm build walks nothing; `always` walks it anyway
    (files the host just wrote into it)."""
    uid, gid = container_root(client)
    path = Path(path)
    top = path.stat()
    if not always and path.is_dir() and (top.st_uid, top.st_gid) == (uid, gid) and top.st_mode & 0o077 == 0:
        return
    for current in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if current.is_symlink():
            continue
        try:
            stat = current.stat()
            if (stat.st_uid, stat.st_gid) != (uid, gid):
                os.chown(current, uid, gid)
            if current.is_dir():
                current.chmod(0o700)
            else:
                current.chmod(stat.st_mode & 0o700)
        except FileNotFoundError:
            continue
