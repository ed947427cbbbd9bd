"""The client's settings file, ~/.deis/<profile>.json, with the keys the Deis v1 client uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DeisError

KEYS = ("controller", "username", "token", "ssl_verify")


def settings_path() -> Path:
    """~/.deis/client.json, or ~/.deis/<DEIS_PROFILE>.json; HOME decides where ~ is."""
    profile = os.environ.get("DEIS_PROFILE") or "client"
    return Path(os.path.expanduser("~")) / ".deis" / f"{profile}.json"


class Settings(dict):
    """The settings as a dict; `save()` writes them back, readable by the user only."""

    def __init__(self, path: Path | None = None):
        super().__init__()
        self.path = path or settings_path()
        if self.path.exists():
            try:
                self.update(json.loads(self.path.read_text() or "{}"))
            except ValueError as exc:
                raise DeisError(f"{self.path} is not valid JSON ({exc}); fix or delete it, then log in again.")

    @property
    def logged_in(self) -> bool:
        return bool(self.get("controller") and self.get("token"))

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            json.dump(dict(self), f)

    def forget(self) -> None:
        """Log out: the v1 client keeps the keys with null values."""
        for key in KEYS:
            self[key] = None
        self.save()
