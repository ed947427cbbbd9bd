"""The platform's files are its own: a private umask in every process, a private data directory.

The data directory holds the database (tokens, TLS keys, config values), the secrets, the apps'
repositories, build caches and logs; nobody else on the host may read any of it. Django-free:
every platform process calls `private()` when it starts."""

from __future__ import annotations

import os
from pathlib import Path

UMASK = 0o077
# What a umask cannot fix: files made before it was set, or by a process without it (the SQLite
# database, its WAL and shared memory, the secrets).
PRIVATE_FILES = ("controller.sqlite3", "controller.sqlite3-wal", "controller.sqlite3-shm", "secret_key", "builder_key",
                 "admin_token")


def private(data_dir: Path | str | None = None) -> None:
    """Set the process's umask to 077 and, given the data directory, make it and its secrets private."""
    os.umask(UMASK)
    if data_dir is None:
        return
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _chmod(data_dir, 0o700)
    for name in PRIVATE_FILES:
        _chmod(data_dir / name, 0o600)
    for path in data_dir.glob("*.key"):
        _chmod(path, 0o600)


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except FileNotFoundError:
        pass
