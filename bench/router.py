#!/usr/bin/env python3
"""Router benchmark: what a route change costs, and what clients see of it, at 1 and N apps.

    .venv/bin/python bench/router.py --apps 500          # prints a markdown report
    .venv/bin/python bench/router.py --apps 500 --write  # ... and updates docs/benchmarks.md

Two routers in the same run, each on free ports of 127.0.0.1 in a data directory of its own, in
front of the same two local upstream servers (tests/router/conftest.py's echo servers): the
router of this tree (HAProxy 2.6, changed at runtime) and, as the baseline, the nginx router of
commit BASELINE (rendered files, `nginx -t`, a graceful reload per change), loaded from git. For
each, with 1 app and with N apps:

1. Route change: `update()` of one app's upstreams (switching between the two servers), timed
   from the call until it returns (the change is served then, and the old upstream drained);
   median and p90 of CHANGES changes.
2. Clients during changes: two keep-alive clients (Python's http.client, no retry; a
   `Connection: close` answer makes it open the next connection, as any client does) and one on
   fresh connections, of the changed app and of another app, while CHANGES changes run: errors.
3. Memory: RSS and PSS of the router's processes (master and workers) after the changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fmt, write_section  # noqa: E402
from tests.router.conftest import Upstream, free_port  # noqa: E402

SECTION = "## Router: route changes (bench/router.py)"
BASELINE = "eb2f79c"  # the last commit with the nginx router
CHANGES = 60


def nginx_router_module(tmp: Path):
    """The nginx router package of BASELINE, importable as `deis_nginx_router`."""
    target = tmp / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "archive", BASELINE, "deis/router"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    (target / "deis" / "router").rename(target / "deis_nginx_router")
    sys.path.insert(0, str(target))
    return importlib.import_module("deis_nginx_router")


def process_memory(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MiB of these processes together."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def router_pids(master: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master, *map(int, children)]


class Client(threading.Thread):
    """One client of one host that never retries; counts answers and errors."""

    def __init__(self, port: int, host: str, keep_alive: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.host, self.keep_alive, self.stop = port, host, keep_alive, stop
        self.ok = 0
        self.errors: list[str] = []

    def run(self):
        conn = None
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            if conn is None or not self.keep_alive:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    self.ok += 1
                else:
                    self.errors.append(str(answer.status))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(type(exc).__name__)
                conn.close()
                conn = None
            if not self.keep_alive and conn is not None:
                conn.close()
                conn = None


def measure(name: str, make_router, route_class, apps: int, a: Upstream, b: Upstream) -> dict:
    router = make_router()
    router.start()
    try:
        routes = [route_class(f"app{i}", [f"app{i}.localhost"], [a.address]) for i in range(apps)]
        router.apply(routes)
        other = "app1.localhost" if apps > 1 else None
        stop = threading.Event()
        clients = [Client(router.http_port, "app0.localhost", True, stop),
                   Client(router.http_port, "app0.localhost", False, stop)]
        if other:
            clients.append(Client(router.http_port, other, True, stop))
        for client in clients:
            client.start()
        time.sleep(0.5)
        seconds, reloads, warnings = [], 0, []
        for i in range(CHANGES):
            target = b if i % 2 == 0 else a
            started = time.monotonic()
            result = router.update({"app0": route_class("app0", ["app0.localhost"], [target.address])})
            seconds.append(time.monotonic() - started)
            reloads += bool(getattr(result, "reloaded", False))
            warnings += list(getattr(result, "warnings", []))
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for client in clients:
            client.join(15)
        rss, pss = process_memory(router_pids(router.master_pid()))
        seconds.sort()
        return {"router": name, "apps": apps, "change_median_s": statistics.median(seconds),
                "change_p90_s": seconds[int(0.9 * (len(seconds) - 1))],
                "requests": sum(c.ok for c in clients), "errors": sum(len(c.errors) for c in clients),
                "errors_other_app": len(clients[2].errors) if other else None,
                "error_kinds": sorted({e for c in clients for e in c.errors}),
                "reloads": reloads, "warnings": warnings[:5],
                "rss_mib": rss, "pss_mib": pss}
    finally:
        router.stop()


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0].split(" - ")[0]
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().replace("nginx version: ", "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "nproc": os.cpu_count(), "haproxy": haproxy, "nginx": nginx, "commit": commit,
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def report(rows: list[dict], m: dict, apps: int) -> str:
    def row(r):
        return (f"| {r['router']} | {r['apps']} | {fmt(r['change_median_s'] * 1000, 0)} ms | "
                f"{fmt(r['change_p90_s'] * 1000, 0)} ms | {r['requests']:,} | {r['errors']} "
                f"({', '.join(r['error_kinds']) or 'none'}) | "
                f"{'-' if r['errors_other_app'] is None else r['errors_other_app']} | "
                f"{fmt(r['rss_mib'])} / {fmt(r['pss_mib'])} MiB |")

    by = {(r["router"], r["apps"]): r for r in rows}
    new1, newn, old1, oldn = by[("haproxy", 1)], by[("haproxy", apps)], by[("nginx", 1)], by[("nginx", apps)]
    return "\n".join([
        f"Run {m['when']} on {m['nproc']} CPUs ({m['cpu']}), {m['haproxy']}, {m['nginx']} (the baseline: "
        f"the router of commit {BASELINE}, loaded from git), commit {m['commit']}. {CHANGES} changes of one "
        "app's upstreams (between two local echo servers), each timed until `update()` returns; meanwhile "
        "two keep-alive clients (one of the changed app, one of another app) and one on fresh connections, "
        "none retrying.",
        "",
        "| router | apps | change, median | p90 | requests during changes | errors | of them, other app's client | router RSS / PSS |",
        "|---|---|---|---|---|---|---|---|",
        *(row(r) for r in rows),
        "",
        f"- A change at {apps} apps against 1 app: HAProxy "
        f"{newn['change_median_s'] / new1['change_median_s']:.2f}x, nginx {oldn['change_median_s'] / old1['change_median_s']:.2f}x.",
        f"- HAProxy against nginx at {apps} apps: a change takes {newn['change_median_s'] / oldn['change_median_s']:.2f}x "
        f"the time; memory {newn['rss_mib'] / oldn['rss_mib']:.2f}x the RSS.",
        f"- Errors clients saw: HAProxy {new1['errors'] + newn['errors']}, nginx {old1['errors'] + oldn['errors']}.",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--write", action="store_true", help=f"update the section '{SECTION[3:]}' of docs/benchmarks.md")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args()
    from deis.router import Route, Router, find_haproxy

    tmp = Path(tempfile.mkdtemp(prefix="bench-router-"))
    old = nginx_router_module(tmp)
    haproxy, nginx = find_haproxy(install=True), old.find_nginx(install=False)
    a, b = Upstream("a"), Upstream("b")
    rows = []
    try:
        for apps in (1, args.apps):
            for name in ("haproxy", "nginx"):
                data = tmp / f"{name}-{apps}"
                if name == "haproxy":
                    make = lambda: Router(data, http_port=free_port(), https_port=None,  # noqa: E731
                                          listen_address="127.0.0.1", haproxy=haproxy, worker_processes=2)
                    rows.append(measure(name, make, Route, apps, a, b))
                else:
                    make = lambda: old.Router(data, http_port=free_port(), https_port=None,  # noqa: E731
                                              listen_address="127.0.0.1", nginx=nginx, worker_processes=2)
                    rows.append(measure(name, make, old.Route, apps, a, b))
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        a.close()
        b.close()
    m = machine()
    text = report(rows, m, args.apps)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "rows": rows}, indent=1))
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
