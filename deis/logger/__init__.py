"""The logger: keeps the last lines of every process of every app, across deploys and crashes.

`collector` follows the engine's containers and writes their lines, with platform events, into a
`LogStore` (one file per app in the data directory); the controller reads the store for `deis logs`.
"""

from .store import LogStore, format_line, platform_line

__all__ = ["LogStore", "format_line", "platform_line"]
