"""One append-only file per app, trimmed to its newest lines; safe for several writer processes.

`deis destroy` removes an app's log and leaves a tombstone (`<root>/.destroyed/<app>`: when): lines
of processes started before it (`append(..., born=...)`, the collector's container lines) are
dropped, so late output of the destroyed app's containers never re-creates a log that a new app of
the same name would inherit; that new app's processes, started later, are logged as usual.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
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

    def tombstone(self, app: str) -> Path:
        self.path(app)  # checks the name
        return self.root / ".destroyed" / app

    def destroyed_at(self, app: str) -> float | None:
        """When the last app of this name was destroyed (epoch seconds), None if never."""
        try:
            return float(self.tombstone(app).read_text().strip() or 0)
        except (OSError, ValueError):
            return None

    def _of_a_destroyed_app(self, app: str, born: float | None) -> bool:
        if born is None:
            return False
        destroyed = self.destroyed_at(app)
        return destroyed is not None and born <= destroyed

    def append(self, app: str, lines: list[str], born: float | None = None) -> None:
        """`born`: when the process writing these lines started (epoch seconds); lines of a process
        older than the app's destruction are dropped (see the module's docstring)."""
        if not lines or self._of_a_destroyed_app(app, born):
            return
        data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode("utf-8", "replace")
        with self._locked(app, "ab") as handle:
            if self._of_a_destroyed_app(app, born):  # destroyed meanwhile: leave nothing behind
                if handle.tell() == 0:
                    self.path(app).unlink(missing_ok=True)
                return
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

    def remove(self, app: str, when: float | None = None) -> None:
        """The app is destroyed: its log goes, and its tombstone (`when`, default now) stays first."""
        tombstone = self.tombstone(app)
        tombstone.parent.mkdir(parents=True, exist_ok=True)
        tmp = tombstone.with_name(f".{app}.{os.getpid()}.tmp")
        tmp.write_text(repr(time.time() if when is None else float(when)))
        os.replace(tmp, tombstone)
        path = self.path(app)
        for leftover in (path, path.with_suffix(".trim")):
            leftover.unlink(missing_ok=True)
