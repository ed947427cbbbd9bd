"""One append-only file per app, trimmed to its newest lines; safe for several writer processes."""

from __future__ import annotations

import fcntl
import os
import re
from collections import deque
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

_APP = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def format_line(app: str, source: str, message: str, stamp: str | None = None) -> str:
    """`<ISO timestamp> <app>[<source>]: <message>`: the v1 API's log line."""
    return f"{stamp or now_iso()} {app}[{source}]: {message.rstrip()}"


def platform_line(message: str, source: str = "api") -> str:
    """An event of the platform itself in an app's log (deploys, scaling, crashes): `deis[<source>]`."""
    return f"{now_iso()} deis[{source}]: {message.rstrip()}"


class LogStore:
    """`<root>/<app>.log`; each holds at most about `max_bytes` (the oldest half goes first)."""

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes or int(os.environ.get("DEIS_LOG_MAX_BYTES", str(2 * 1024 * 1024)))

    def path(self, app: str) -> Path:
        if not _APP.match(app):
            raise ValueError(f"not an app name: {app!r}")
        return self.root / f"{app}.log"

    @contextmanager
    def _locked(self, app: str, mode: str):
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(app)
        while True:
            with open(path, mode) as handle:
                fcntl.flock(handle, fcntl.LOCK_EX if "a" in mode else fcntl.LOCK_SH)
                try:
                    same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if same:  # not trimmed (replaced) while this one waited for the lock
                    yield handle
                    return

    def append(self, app: str, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode("utf-8", "replace")
        with self._locked(app, "ab") as handle:
            handle.write(data)
            handle.flush()
            if handle.tell() > self.max_bytes:
                self._trim(app)

    def _trim(self, app: str) -> None:
        """Keep the newest half (called with the file lock held)."""
        path = self.path(app)
        with open(path, "rb") as source:
            source.seek(-(self.max_bytes // 2), os.SEEK_END)
            source.readline()  # drop the partial first line
            rest = source.read()
        tmp = path.with_suffix(".trim")
        tmp.write_bytes(rest)
        os.replace(tmp, path)

    def tail(self, app: str, lines: int) -> list[str]:
        try:
            with self._locked(app, "rb") as handle:
                # Read backwards in blocks until enough lines are in hand.
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                block, data = 64 * 1024, b""
                while end > 0 and data.count(b"\n") <= lines:
                    start = max(0, end - block)
                    handle.seek(start)
                    data = handle.read(end - start) + data
                    end = start
        except FileNotFoundError:
            return []
        text = data.decode("utf-8", "replace").splitlines()
        return list(deque(text, maxlen=lines))

    def remove(self, app: str) -> None:
        self.path(app).unlink(missing_ok=True)
