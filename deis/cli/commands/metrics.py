"""metrics:list: an app's requests through the router (the last 1, 5 and 15 minutes) and the CPU
and memory of its processes."""

from __future__ import annotations

import json

import click

from ..common import app_option, client, current_app
from ..output import echo, heading, table

WINDOWS = ("1m", "5m", "15m")
STATUS = ("2xx", "3xx", "4xx", "5xx")


def size(n) -> str:
    """Bytes for people: 512 B, 3.2 KiB, 25.7 MiB; `-` when unknown."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"  # not reached


def ms(value) -> str:
    return "-" if value is None else f"{value:g} ms"


def show_metrics(answer: dict) -> None:
    app = answer["app"]
    heading(f"{app} Requests")
    rows = []
    for name in WINDOWS:
        w = answer["windows"][name]
        rows.append([name, w["requests"], *(w["status"].get(key, 0) for key in STATUS), ms(w["latency_ms"]["p50"]),
                     ms(w["latency_ms"]["p99"]), f"{w['rps']:g}", size(w["bytes_in"]), size(w["bytes_out"])])
    table(["Window", "Requests", *STATUS, "p50", "p99", "Req/s", "In", "Out"], rows)
    echo()
    heading(f"{app} Processes")
    processes = answer.get("processes") or []
    if not processes:
        echo("No processes running (or the runtime cannot tell).")
        return
    table(["Process", "Release", "CPU", "Memory", "Limit"],
          [[f"{p['type']}.{p['num']}", p.get("release", ""), f"{p['cpu_percent']:.1f}%", size(p["memory_bytes"]),
            size(p.get("memory_limit_bytes"))] for p in processes])


@click.command("metrics:list")
@app_option
@click.option("--json", "as_json", is_flag=True, help="Print the controller's answer as JSON.")
def metrics_list(app, as_json):
    """Show an app's requests (last 1, 5, 15 minutes) and its processes' CPU and memory."""
    app = current_app(app)
    answer = client().get(f"/v1/apps/{app}/metrics").json()
    if as_json:
        echo(json.dumps(answer, indent=2, sort_keys=True))
    else:
        show_metrics(answer)


commands = [metrics_list]
