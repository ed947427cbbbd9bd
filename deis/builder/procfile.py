"""The Procfile: `type: command` lines, parsed strictly so a bad one rejects the push with its line."""

from __future__ import annotations

import re
from pathlib import Path

from deis.builder import BuildError

TYPE = re.compile(r"[A-Za-z0-9_-]+")


class ProcfileError(BuildError):
    """The Procfile is malformed; the message names the line."""


def parse(text: str) -> dict[str, str]:
    """Process types -> commands; blank and #-lines ignored, split at the first colon."""
    types: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not colon or not TYPE.fullmatch(name) or not command:
            raise ProcfileError(
                f"Procfile line {number} is not `type: command` (types are letters, digits, "
                f"_ and -): {raw.strip()!r}")
        if name in types:
            raise ProcfileError(
                f"Procfile line {number} repeats the process type {name!r} "
                f"(first on line {first_seen[name]}): {raw.strip()!r}")
        types[name], first_seen[name] = command, number
    return types


def read(source: Path) -> dict[str, str] | None:
    """The parsed Procfile at the root of `source`, or None when there is none."""
    text = read_text_inside(source, "Procfile")
    return None if text is None else parse(text)


def read_text_inside(source: Path, name: str) -> str | None:
    """A file of the pushed tree, never one a symlink points to outside it (a host file)."""
    path = source / name
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(source.resolve()):
        raise BuildError(f"{name} is a symlink to outside the app: refusing it")
    return path.read_text(encoding="utf-8", errors="replace")
