#!/usr/bin/env python3
"""Density benchmark: many apps of many tenants on one host, isolated and confined, all serving.

    .venv/bin/python bench/density.py --apps 500          # prints a markdown report
    .venv/bin/python bench/density.py --apps 500 --write  # ... and updates docs/benchmarks.md
    .venv/bin/python bench/density.py --json F            # ... and dumps every figure to F

A supervised platform (`python -m deis.platform up`: controller, router, logger, deployer and
builder under supervisord, in a data directory, ports and label namespace of its own) runs N apps
of N/100 tenants (each tenant below its quota of 200 processes), one web process each: the busybox
test image (`tests/scheduler/busybox_image.py`, 2 MB) serving `httpd`, every container with the
platform's limits (memory, pids, capabilities, no-new-privileges, rotated logs), on the
namespace's apps' network (no traffic between containers), with user-namespace remapping on. Every figure is set against a baseline of the same run:

1. Config change served (POST /v1/apps/<app>/config until the router answers the new release) of
   one app while the platform runs N apps, against the same with 1 app (measured first).
2. Memory: the platform's own processes (every process below supervisord, and supervisord) in RSS
   with 1 app and with N apps; host memory used (MemTotal - MemAvailable) per app process beyond the
   process's own RSS (the container runtime's shim, the kernel's namespaces, cgroups, veths and
   bridges, the engine's bookkeeping), against an idle host (measured before the platform started).
3. All N served through the router (Host: <app>.localhost answers its release), and isolation held:
   from one app's container, connections to another app's container and to the controller's port
   on this host are refused.

Everything it starts is stopped and its namespace purged at the end, even on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import requests  # noqa: E402

from bench.common import fmt, write_section  # noqa: E402
from bench.runtime import bare_one, machine, wait_until  # noqa: E402
from bench.rollouts import Supervised  # noqa: E402
from deis.scheduler.docker import purge  # noqa: E402
from deis.platform import Controller  # noqa: E402
from tests.conftest import ApiUser, LiveController  # noqa: E402
from tests.scheduler.busybox_image import ensure_image  # noqa: E402

SECTION = "## Density (bench/density.py)"
WEB = "echo $DEIS_RELEASE > /www/index.html; exec httpd -f -p $PORT -h /www"
APPS_PER_TENANT = 100
GOAL_CONFIG_RATIO, GOAL_PLATFORM_MB = 1.3, 300.0
CONFIG_RUNS = 11  # medians of 5 moved by 0.1-0.3 s between runs on one tree


def log(msg: str) -> None:
    print(f"[density {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def meminfo() -> dict[str, int]:
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    return values


def used_bytes() -> int:
    info = meminfo()
    return info["MemTotal"] - info["MemAvailable"]


def _proc_bytes(path: str, key: str) -> int:
    """A `key:  N kB` line of a /proc file, in bytes (0 when the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def rss_of(pid: int) -> int:
    return _proc_bytes(f"/proc/{pid}/status", "VmRSS:")


def pss_of(pid: int) -> int:
    """Proportional set size: shared pages counted once over the processes sharing them."""
    return _proc_bytes(f"/proc/{pid}/smaps_rollup", "Pss:")


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def tree_rss(root: int, measure=rss_of) -> tuple[int, int]:
    """RSS (bytes; or `measure`) and count of a process and all its descendants."""
    tree, total, count, todo = children(), 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += measure(pid)
        count += 1
        todo.extend(tree.get(pid, []))
    return total, count


class Platform(Supervised):
    """`python -m deis.platform up` of its own (data directory, ports, namespace), with no app."""

    def __init__(self):
        super().__init__(image="", interval=None)
        self.url = f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        started = self.platform("up")
        if started.returncode != 0:
            raise RuntimeError(f"deis.platform up failed:\n{started.stdout}\n{started.stderr}")

    def rss(self) -> dict:
        """RSS of supervisord and every program's process tree."""
        programs, pss = {}, {}
        for name, info in self.supervisor.processes().items():
            if info.get("pid"):
                programs[name] = tree_rss(info["pid"])
                pss[name] = tree_rss(info["pid"], pss_of)[0]
        supervisord = self.supervisor.pid()
        own = rss_of(supervisord) if supervisord else 0
        total = own + sum(rss for rss, _ in programs.values())
        total_pss = (pss_of(supervisord) if supervisord else 0) + sum(pss.values())
        return {"total_mb": total / 2**20, "supervisord_mb": own / 2**20, "pss_mb": total_pss / 2**20,
                "programs": {name: {"mb": rss / 2**20, "pss_mb": pss[name] / 2**20, "processes": n}
                             for name, (rss, n) in programs.items()}}

    def user(self, name: str) -> ApiUser:
        """An ordinary tenant; the bench waits for rollouts itself (through the router)."""
        user = LiveController(Controller(data_dir=self.data_dir, port=self.port)).register(
            name, f"pw-{uuid.uuid4().hex}")  # nothing of the name: Django refuses passwords like it
        user.settle = False
        return user


def via_router(port: int, app: str, timeout: float = 2.0) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/", headers={"Host": f"{app}.localhost"}, timeout=timeout)


def serves(port: int, app: str, release: str) -> bool:
    try:
        r = via_router(port, app, timeout=2)
        return r.status_code == 200 and r.text.strip() == release
    except requests.RequestException:
        return False


def deploy(user: ApiUser, app: str, image: str) -> str:
    answer = user.post("/v1/apps", json={"id": app})
    if answer.status_code != 201:
        raise RuntimeError(f"create {app}: {answer.status_code} {answer.text}")
    answer = user.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": WEB}})
    if answer.status_code != 201:
        raise RuntimeError(f"build {app}: {answer.status_code} {answer.text}")
    return f"v{answer.headers['Deis-Release']}"


def config_served(user: ApiUser, port: int, app: str, n: int) -> float:
    t0 = time.perf_counter()
    answer = user.post(f"/v1/apps/{app}/config", json={"values": {"BENCH": str(n)}})
    if answer.status_code != 201:
        raise RuntimeError(f"config {app}: {answer.status_code} {answer.text}")
    release = f"v{answer.headers['Deis-Release']}"
    wait_until(lambda: serves(port, app, release), 120, f"{app} serving {release}", pause=0.01)
    return time.perf_counter() - t0


def config_runs(user: ApiUser, port: int, app: str, start: int, steps: list | None = None) -> list[float]:
    """Config changes served, one after another; `steps` collects each rollout's steps (where the
    time went: queued until `started`, then each step's stamp)."""
    times = []
    for i in range(CONFIG_RUNS):
        times.append(config_served(user, port, app, start + i))
        time.sleep(1.5)  # past the new release's probation, as a user would be
        if steps is not None:
            steps.append(user.get(f"/v1/apps/{app}/rollout").json())
    return times


def bare_runs(client, image: str, namespace: str) -> list[float]:
    """The engine alone: `docker run -d` of the same image until it answers HTTP (baseline)."""
    return [bare_one(client, image, namespace) for _ in range(CONFIG_RUNS)]


def app_processes(client, namespace: str) -> tuple[int, int]:
    """(containers, the RSS of every process in them) of the namespace's apps."""
    total, count = 0, 0
    for container in client.containers.list(filters={"label": f"{namespace}.managed=1"}):
        count += 1
        pid = container.attrs["State"]["Pid"]
        total += tree_rss(pid)[0] if pid else 0
    return count, total


def isolation(client, namespace: str, apps: list[str], controller_port: int) -> dict:
    """From the first app's container: another app's container, and the controller on this host."""
    def container_of(app):
        return client.containers.list(filters={"label": [f"{namespace}.app={app}"]})[0]
    source, target = container_of(apps[0]), container_of(apps[-1])
    target_ip = next(iter(target.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    own = next(iter(source.attrs["NetworkSettings"]["Networks"].values()))
    port = int(target.labels[f"{namespace}.port"])

    def reach(address, to_port):
        # nc, as tests/e2e/test_tenancy.py: busybox's `wget -T` crashes (status 139), which read
        # as "refused" for every address until session 9. `own` is the control: it must connect.
        code, _ = source.exec_run(["sh", "-c", f"nc -w 2 {address} {to_port} </dev/null"])
        return code == 0
    return {"own": reach(own["IPAddress"], port), "other_app": reach(target_ip, port),
            "controller": reach(own["Gateway"], controller_port)}


def run(args) -> dict:
    client = docker.from_env()
    image = ensure_image(client)
    res: dict = {"apps": args.apps, "machine": machine(client)}
    platform = Platform()
    try:
        platform.up()
        users = [platform.user(f"tenant{i}-{uuid.uuid4().hex[:4]}")
                 for i in range((args.apps + APPS_PER_TENANT - 1) // APPS_PER_TENANT)]
        apps = [f"d{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(args.apps)]
        owner = {app: users[i // APPS_PER_TENANT] for i, app in enumerate(apps)}
        probe = apps[0]
        release = deploy(owner[probe], probe, image)
        wait_until(lambda: serves(platform.router_port, probe, release), 120, "the first app served")
        time.sleep(2)
        res["rss_1"] = platform.rss()
        res["used_1"] = used_bytes()
        res["config_1"] = config_runs(owner[probe], platform.router_port, probe, 0, res.setdefault("steps_1", []))
        res["bare_1"] = bare_runs(client, image, platform.namespace)
        log(f"1 app: config change served in {statistics.median(res['config_1']):.2f} s (median)")

        t0 = time.perf_counter()
        releases = {}
        with ThreadPoolExecutor(8) as pool:
            for app, rel in zip(apps[1:], pool.map(lambda a: deploy(owner[a], a, image), apps[1:])):
                releases[app] = rel
        res["posted_s"] = time.perf_counter() - t0
        log(f"{len(apps) - 1} more apps posted in {res['posted_s']:.1f} s")
        pending = set(apps[1:])
        deadline = time.monotonic() + args.timeout
        while pending and time.monotonic() < deadline:
            with ThreadPoolExecutor(16) as pool:
                done = [a for a, ok in zip(list(pending), pool.map(
                    lambda a: serves(platform.router_port, a, releases[a]), list(pending))) if ok]
            pending -= set(done)
            if pending:
                log(f"{len(apps) - len(pending)} of {len(apps)} served")
                time.sleep(2)
        res["all_served_s"] = time.perf_counter() - t0
        res["not_served"] = sorted(pending)
        log(f"all served after {res['all_served_s']:.1f} s; not served: {len(pending)}")
        time.sleep(10)  # the deployer's and logger's steady state

        with ThreadPoolExecutor(16) as pool:
            res["served_again"] = sum(pool.map(lambda a: serves(platform.router_port, a, releases.get(a, release)),
                                               apps[1:]))
        res["rss_n"] = platform.rss()
        res["containers"], res["app_rss"] = app_processes(client, platform.namespace)
        res["used_n"] = used_bytes()
        res["config_n"] = config_runs(owner[probe], platform.router_port, probe, 100, res.setdefault("steps_n", []))
        res["bare_n"] = bare_runs(client, image, platform.namespace)
        log(f"{args.apps} apps: config change served in {statistics.median(res['config_n']):.2f} s (median)")
        res["isolation"] = isolation(client, platform.namespace, apps, platform.port)
        res["networks"] = len(client.networks.list(filters={"label": f"{platform.namespace}.managed=1"}))
        if not args.keep:
            # The 1-app baseline again, once the others are destroyed: one baseline alone moved by
            # up to 0.2 s between runs of one tree (an engine still busy, the VM's neighbours).
            t0 = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda a: owner[a].delete(f"/v1/apps/{a}"), apps[1:]))
            wait_until(lambda: len(client.api.containers(filters={"label": f"{platform.namespace}.managed=1"}))
                       <= 1, 600, "the other apps' processes gone")
            res["destroyed_s"] = time.perf_counter() - t0
            time.sleep(10)
            res["config_1_after"] = config_runs(owner[probe], platform.router_port, probe, 200)
            res["bare_1_after"] = bare_runs(client, image, platform.namespace)
            log(f"{len(apps) - 1} apps destroyed in {res['destroyed_s']:.0f} s; 1 app again: config change served in "
                f"{statistics.median(res['config_1_after']):.2f} s (median)")
    finally:
        if args.keep:
            res["kept"] = {"data_dir": str(platform.data_dir), "namespace": platform.namespace,
                           "controller": platform.url, "router_port": platform.router_port, "probe": probe,
                           "tenant": owner[probe].username, "token": owner[probe].token}
            log(f"kept: DEIS_DATA_DIR={platform.data_dir} (stop it with bench/density.py --down DIR)")
        else:
            log("tearing down")
            platform.down()
    return res


def report(res: dict) -> str:
    m = res["machine"]
    # The baseline: every 1-app sample, before the other apps and after they were destroyed.
    base_config = res["config_1"] + res.get("config_1_after", [])
    base_bare = res["bare_1"] + res.get("bare_1_after", [])
    c1, cn = statistics.median(base_config), statistics.median(res["config_n"])
    ratio = cn / c1
    b1, bn = statistics.median(base_bare), statistics.median(res["bare_n"])
    # Against the platform with 1 app: what the other N-1 added, less what the platform itself grew.
    grown = (res["rss_n"]["total_mb"] - res["rss_1"]["total_mb"]) * 2**20
    per_app = (res["used_n"] - res["used_1"] - grown) / max(1, res["containers"] - 1)
    own = res["app_rss"] / max(1, res["containers"])
    beyond = per_app - own
    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {m['cpu']} ({m['nproc']} CPUs, "
        f"{m['mem_gib']:.1f} GiB, kernel {m['kernel']}), Docker {m['docker']}, {m['router']}, commit "
        f"{m['commit']}; userns-remap on, one apps' network (inter-container traffic off), "
        f"{res['apps']} apps of {(res['apps'] + APPS_PER_TENANT - 1) // APPS_PER_TENANT} tenants, one web "
        "process each (busybox httpd, 2 MB image).",
        "",
        "| figure | with 1 app | with %d apps | ratio | goal |" % res["apps"],
        "|---|---|---|---|---|",
        f"| config change served (median of {len(base_config)} / {len(res['config_n'])}) | {fmt(c1, 2)} s | "
        f"{fmt(cn, 2)} s | {fmt(ratio, 2)}x | <= {GOAL_CONFIG_RATIO}x: {'met' if ratio <= GOAL_CONFIG_RATIO else 'NOT met'} |",
        f"| the engine alone: `docker run -d` until it answers (median of {len(base_bare)} / {len(res['bare_n'])}) | "
        f"{fmt(b1, 2)} s | {fmt(bn, 2)} s | {fmt(bn / b1, 2)}x | |",
        f"| platform processes, RSS | {fmt(res['rss_1']['total_mb'])} MB | {fmt(res['rss_n']['total_mb'])} MB | "
        f"{fmt(res['rss_n']['total_mb'] / res['rss_1']['total_mb'], 2)}x | < {GOAL_PLATFORM_MB:.0f} MB: "
        f"{'met' if res['rss_n']['total_mb'] < GOAL_PLATFORM_MB else 'NOT met'} |",
        f"| platform processes, PSS (shared pages once) | {fmt(res['rss_1']['pss_mb'])} MB | "
        f"{fmt(res['rss_n']['pss_mb'])} MB | {fmt(res['rss_n']['pss_mb'] / res['rss_1']['pss_mb'], 2)}x | |",
        "",
        (f"- The 1-app baseline is every 1-app sample: before the other apps (config change "
         f"{fmt(statistics.median(res['config_1']), 2)} s, the engine {fmt(statistics.median(res['bare_1']), 2)} s) and "
         f"after they were destroyed ({fmt(statistics.median(res['config_1_after']), 2)} s, "
         f"{fmt(statistics.median(res['bare_1_after']), 2)} s; destroying them took {res['destroyed_s']:.0f} s)."
         if res.get("config_1_after") else "- The 1-app baseline: before the other apps only (kept platform)."),
        f"- Served through the router: {res['apps'] - len(res['not_served'])} of {res['apps']} apps within "
        f"{fmt(res['all_served_s'])} s of the first POST ({fmt(res['posted_s'])} s to post them, 8 clients); "
        f"{res['served_again']} of {res['apps'] - 1} again 10 s later. {res['containers']} containers on "
        f"{res['networks']} networks.",
        f"- Host memory per app process: {fmt(per_app / 2**20)} MB used (MemTotal - MemAvailable with N apps against "
        f"with 1, less what the platform's own RSS grew), of which {fmt(own / 2**20, 2)} MB is the process's own RSS "
        f"(tini + httpd): {fmt(beyond / 2**20)} MB beyond it (the runtime's shim, namespaces, cgroup, veth, "
        "bridge, the engine's records).",
        "- Platform RSS with %d apps by program: %s; supervisord %s MB." % (
            res["apps"], ", ".join(f"{name} {fmt(p['mb'])} MB RSS, {fmt(p['pss_mb'])} MB PSS ({p['processes']} processes)"
                                   for name, p in sorted(res["rss_n"]["programs"].items())),
            fmt(res["rss_n"]["supervisord_mb"])),
        f"- Isolation at {res['apps']} apps, from one app's container: "
        f"{'its own address reached' if res['isolation'].get('own') else 'ITS OWN ADDRESS NOT REACHED (the probe is broken)'}, "
        f"another app's container {'REACHED' if res['isolation']['other_app'] else 'refused'}, the controller on "
        f"this host {'REACHED' if res['isolation']['controller'] else 'refused'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=1200.0, help="for all apps to serve")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--keep", action="store_true", help="leave the platform and its apps running")
    parser.add_argument("--down", metavar="DATA_DIR", help="stop a kept platform and remove its apps")
    args = parser.parse_args(argv)
    if args.down:
        env = {**os.environ, "DEIS_DATA_DIR": args.down}
        subprocess.run([sys.executable, "-m", "deis.platform", "down"], env=env, cwd=ROOT, timeout=300)
        namespace = json.loads(Path(args.json).read_text())["kept"]["namespace"] if args.json else None
        if namespace:
            purge(docker.from_env(), namespace)
        return 0
    res = run(args)
    text = report(res)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
