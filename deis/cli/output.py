"""How the client prints: v1-style headings and aligned lines, rich tables, spinners while waiting."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime, timezone

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

echo = click.echo


def heading(title: str) -> None:
    echo(f"=== {title}")


def aligned(values: dict, empty: str) -> None:
    """KEY  VALUE lines, keys sorted and padded as the v1 client does."""
    if not values:
        echo(empty)
        return
    width = max(map(len, values)) + 5
    for key in sorted(values):
        echo(f"{key:<{width}} {values[key]}")


def fields(obj: dict, names: list[str]) -> None:
    """An object's fields as 'name: value' lines."""
    width = max(map(len, names)) + 1
    for name in names:
        value = obj.get(name)
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
        echo(f"{name + ':':<{width}} {'-' if value in (None, '') else value}")


def table(columns: list[str], rows: list[list]) -> None:
    """A plain, borderless table; cells are text, never rich markup."""
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
    grid = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    with console.capture() as captured:
        console.print(grid)
    echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def working(message: str):
    """A spinner on the terminal while waiting for the controller; nothing when output is piped."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    return Console(stderr=True).status(message)


def ago(timestamp: str) -> str:
    """'Just now', '3 minutes ago', '2 hours 5 minutes ago', else the date."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return str(timestamp)
    seconds = max(0.0, (datetime.now(timezone.utc) - when).total_seconds())
    if seconds >= 86400:
        return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
    parts = [f"{n} {unit}{'s' if n > 1 else ''}" for n, unit in ((hours, "hour"), (minutes, "minute")) if n]
    return " ".join(parts) + " ago" if parts else "Just now"
