"""Account security without Django: login throttling, token expiry and the one-time admin token.

`LoginThrottle` counts failed logins per key (a username, a client address) in a store shared by
every controller process (a Django FileBasedCache in the data directory, see `login_throttle`),
each read-modify-write under an exclusive file lock so that no worker's failure is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import math
import os
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path


class LoginThrottle:
    """At most `failures` failed logins per key within `window` seconds; then refused until the
    oldest of them leaves the window. `store` has get(key) and set(key, value, timeout) and
    delete(key) (a Django cache does); `lock_path` is a file every sharing process can lock."""

    def __init__(self, store, failures: int, window: float, lock_path: Path | None = None, clock=None):
        self.store, self.failures, self.window = store, failures, window
        self.lock_path, self.clock = lock_path, clock or (lambda: time.time())

    @contextlib.contextmanager
    def locked(self):
        if self.lock_path is None:
            yield
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in (self.store.get(key) or []) if now - t < self.window]

    def retry_after(self, keys) -> int:
        """Seconds until any of `keys` may try again (0: now)."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.failures:
                wait = max(wait, recent[-self.failures] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, keys) -> None:
        now = self.clock()
        with self.locked():
            for key in keys:
                recent = (self._recent(key, now) + [now])[-self.failures:]
                self.store.set(key, recent, math.ceil(self.window))

    def reset(self, key: str) -> None:
        with self.locked():
            self.store.delete(key)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def user_key(username: str) -> str:
    return "login:user:" + _digest(username)


def address_key(address: str) -> str:
    return "login:addr:" + _digest(address or "unknown")


def token_expired(created: datetime, ttl: int, now: datetime) -> bool:
    """Whether a token made at `created` is past its `ttl` seconds (0: tokens never expire)."""
    return bool(ttl) and now >= created + timedelta(seconds=ttl)


# --- the one-time admin token ---------------------------------------------------------------

def issue_admin_token(path: Path) -> str:
    """A new one-time admin token; only its SHA-256 is kept, in `path` (mode 0600), replacing any
    earlier one."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_digest(token) + "\n")
    os.replace(temp, path)
    return token


def discard_admin_token(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class AdminTokenClaim:
    """A matching admin token taken out of use: `commit` consumes it, `release` puts it back."""

    def __init__(self, path: Path, claimed: Path):
        self.path, self.claimed = path, claimed

    def commit(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.claimed.unlink()

    def release(self) -> None:
        if self.path.exists():  # a newer token was issued meanwhile: this one is void
            self.commit()
            return
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.claimed, self.path)


def claim_admin_token(path: Path, token: str) -> AdminTokenClaim | None:
    """The claim on the admin token when `token` is it and nobody else claimed it first, else None.
    The file is renamed away before anything else happens, so two requests never both win."""
    try:
        kept = path.read_text().strip()
    except (FileNotFoundError, OSError):
        return None
    if not token or not hmac.compare_digest(kept, _digest(token)):
        return None
    claimed = path.with_name(f".{path.name}.claimed.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None
    if claimed.read_text().strip() != kept:  # replaced by a new token between reading and renaming
        AdminTokenClaim(path, claimed).release()
        return None
    return AdminTokenClaim(path, claimed)
