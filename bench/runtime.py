#!/usr/bin/env python3
"""Runtime benchmark: how fast releases and scaling reach the router, and what the router costs.

    .venv/bin/python bench/runtime.py            # prints a markdown table
    .venv/bin/python bench/runtime.py --write    # ... and updates docs/benchmarks.md

It runs a whole platform as tests/e2e/test_runtime_api.py does: a Router (HAProxy) on free ports, a
controller (`start_live_controller`, gunicorn) with the Docker scheduler in a namespace of its own,
and the busybox test image (`tests/scheduler/busybox_image.py`). One app is deployed with the
Procfile `web: echo $DEIS_RELEASE > /www/r; hostname > /www/h; exec httpd -f -p $PORT -h /www`, so
`/r` names the release a container runs and `/h` the container. Every figure is set against a
baseline measured in the same run:

1. config change -> new release serving: from `POST /v1/apps/<app>/config` until `GET /r` through
   the router answers the new release. Baseline: one bare container of the same image (Docker SDK
   `containers.run(detach=True)`, i.e. `docker run -d`, same network, `--init`) from the call until
   `GET /` at its address answers 200 (no controller, no router).
2. scale web 1 -> 20: from `POST /v1/apps/<app>/scale` until the router has answered from all 20
   containers (distinct `/h`). Also: when the POST returned (after the health checks and the
   router switch), and when `GET /v1/apps/<app>/containers` shows 20 web processes `up` (a process
   is `up` only after DEIS_SETTLE s of uptime). Baseline: 20 bare containers started one after
   another, until all 20 answer at their addresses.
3. router cost: wrk (1 thread, 10 connections, 5 s) against the router (Host header) and against
   the app's single web container directly (web=1), alternating; the median of the runs. Each run
   gets a fresh release on a port of its own (PORT config var): busybox httpd closes every
   connection, and the TIME_WAITs of one run would otherwise starve the next of ephemeral ports.
   Twice: with wrk, HAProxy and the app sharing every CPU, and with the app on a CPU of its own
   (`docker update --cpuset-cpus`) while wrk and HAProxy (master and workers) are pinned to another:
   on a machine of two CPUs, every cycle HAProxy spends is otherwise taken from the app itself, so
   only the second says whether the router limits what the app can serve.

Everything it starts (containers labelled with its namespace, router, controller) is removed at the
end, even on failure.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import requests  # noqa: E402

from bench.common import DOC, WRK_DONE_LUA, fmt, platform_parser, run_wrk, write_section  # noqa: E402
from deis.router import Router  # noqa: E402
from deis.scheduler.docker import purge  # noqa: E402
from tests.conftest import LiveController, free_port, start_live_controller  # noqa: E402
from tests.scheduler.busybox_image import ensure_image  # noqa: E402

SECTION = "## Runtime (bench/runtime.py)"
WEB = "echo $DEIS_RELEASE > /www/r; hostname > /www/h; exec httpd -f -p $PORT -h /www"
BARE_CMD = ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"]
GOAL_CONFIG_RATIO, GOAL_SCALE_S, GOAL_RPS_SHARE = 3.0, 5.0, 0.90
SCALE_TO = 20
POLL = 0.01



def wait_until(check, timeout: float, what: str, pause: float = POLL):
    """`check()` once truthy (a refused connection counts as not yet), else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)


def get(url: str, host: str | None = None, timeout: float = 2.0) -> requests.Response:
    return requests.get(url, headers={"Host": host} if host else None, timeout=timeout)


# --- baselines ----------------------------------------------------------------------------------

def bare_labels(namespace: str) -> dict:
    return {f"{namespace}.managed": "1", f"{namespace}.bench": "bare"}


def address_of(container) -> str:
    container.reload()
    nets = container.attrs["NetworkSettings"].get("Networks") or {}  # bare ones: bridge; apps: their own
    return next((n["IPAddress"] for n in nets.values() if n.get("IPAddress")), "")


def start_bare(client, image: str, namespace: str):
    return client.containers.run(image, BARE_CMD, detach=True, init=True, network="bridge",
                                 environment={"PORT": "8080"}, labels=bare_labels(namespace))


def answers(address: str) -> bool:
    return bool(address) and get(f"http://{address}:8080/", timeout=1).status_code == 200


def bare_one(client, image: str, namespace: str) -> float:
    t0 = time.perf_counter()
    container = start_bare(client, image, namespace)
    try:
        address = wait_until(lambda: address_of(container), 10, "bare container address")
        wait_until(lambda: answers(address), 20, "bare container to answer")
        return time.perf_counter() - t0
    finally:
        container.remove(force=True)


def bare_many(client, image: str, namespace: str, n: int) -> float:
    t0 = time.perf_counter()
    containers = []
    try:
        for _ in range(n):
            containers.append(start_bare(client, image, namespace))
        pending = list(containers)
        while pending:
            for c in list(pending):
                address = address_of(c)
                try:
                    if answers(address):
                        pending.remove(c)
                except requests.RequestException:
                    pass
            if time.perf_counter() - t0 > 60:
                raise TimeoutError(f"{len(pending)} bare containers did not answer")
            if pending:
                time.sleep(POLL)
        return time.perf_counter() - t0
    finally:
        for c in containers:
            c.remove(force=True)


# --- platform measurements ----------------------------------------------------------------------

class Platform:
    def __init__(self, client, image: str, namespace: str, http_port: int, user, app: str):
        self.client, self.image, self.namespace = client, image, namespace
        self.http_port, self.user, self.app = http_port, user, app
        self.host = f"{app}.localhost"
        self.router_url = f"http://127.0.0.1:{http_port}"

    def via_router(self, path: str) -> requests.Response:
        return get(self.router_url + path, self.host)

    def config_change(self, n: int) -> dict:
        return self.config_change_values({"BENCH": str(n)})

    def config_change_values(self, values: dict) -> dict:
        """Served: the first answer of the new release through the router, polled every 10 ms while
        the POST is still being answered (the router switches before the old processes stop)."""
        current = self.via_router("/r").text.strip()
        expected = f"v{int(current.lstrip('v')) + 1}" if current.startswith("v") else None
        served: list[float] = []
        done = threading.Event()

        def poll():
            while not done.is_set() and expected:
                try:
                    r = self.via_router("/r")
                    if r.status_code == 200 and r.text.strip() == expected:
                        served.append(time.perf_counter() - t0)
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.01)

        t0 = time.perf_counter()
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        answer = self.user.post(f"/v1/apps/{self.app}/config", json={"values": values})
        t_post = time.perf_counter() - t0
        if answer.status_code != 201:
            done.set()
            raise RuntimeError(f"config: {answer.status_code} {answer.text}")
        release = f"v{answer.headers['Deis-Release']}"
        poller.join(1.0 if release == expected else 0)
        done.set()
        if not served:

            def serving():
                r = self.via_router("/r")
                return r.status_code == 200 and r.text.strip() == release
            wait_until(serving, 60, f"router to serve {release}")
            served.append(time.perf_counter() - t0)
        return {"serve_s": served[0], "post_s": t_post, "release": release}

    def scale(self, n: int) -> requests.Response:
        answer = self.user.post(f"/v1/apps/{self.app}/scale", json={"web": n})
        if answer.status_code != 204:
            raise RuntimeError(f"scale web={n}: {answer.status_code} {answer.text}")
        return answer

    def web_up(self) -> int:
        results = self.user.get(f"/v1/apps/{self.app}/containers").json()["results"]
        return sum(1 for p in results if p["type"] == "web" and p["state"] == "up")

    def scale_up(self, n: int) -> dict:
        t0 = time.perf_counter()
        self.scale(n)
        t_post = time.perf_counter() - t0
        seen: set[str] = set()

        def all_seen():
            for _ in range(2 * n):
                r = self.via_router("/h")
                if r.status_code == 200:
                    seen.add(r.text.strip())
            return len(seen) >= n
        wait_until(all_seen, 60, f"router to answer from {n} containers")
        t_router = time.perf_counter() - t0
        wait_until(lambda: self.web_up() >= n, 60, f"{n} web processes up")
        t_up = time.perf_counter() - t0
        return {"post_s": t_post, "router_all_s": t_router, "api_up_s": t_up, "distinct": len(seen)}

    def web_container(self):
        found = self.client.containers.list(filters={"label": [f"{self.namespace}.app={self.app}",
                                                                  f"{self.namespace}.type=web"]})
        if len(found) != 1:
            raise RuntimeError(f"expected one web container, found {len(found)}")
        c = found[0]
        return c, address_of(c), int(c.labels[f"{self.namespace}.port"])


APP_CPU, ROUTER_CPU = "1", 0  # the pinned router runs: the app alone on CPU 1, wrk and HAProxy on CPU 0


def pin_router(router: Router, cpus: set[int]) -> None:
    """Set the CPU affinity of HAProxy's master and workers (new workers inherit the master's)."""
    master = router.master_pid()
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    for pid in [master, *map(int, workers)]:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:
            pass




def wrk_run(url: str, host: str | None, duration: float, connections: int, script: Path,
            pinned: bool = False) -> dict:
    cmd = (["taskset", "-c", str(ROUTER_CPU)] if pinned else []) + ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s", "-s", str(script)]
    if host:
        cmd += ["-H", f"Host: {host}"]
    return run_wrk(cmd + [url], duration)[0]


# --- the report ---------------------------------------------------------------------------------

def machine(client) -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "deis"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": cpu,
        "mem_gib": int(mem_kb.group(1)) / 1024 / 1024 if mem_kb else 0,
        "kernel": platform.release(),
        "docker": client.version().get("Version", "?"),
        "router": ((haproxy.stdout or haproxy.stderr).strip().splitlines() or ["HAProxy ?"])[0].split(" - ")[0],
        "wrk": (wrk.stdout + wrk.stderr).split(" Copyright")[0].strip(),
        "python": platform.python_version(),
        "commit": commit + (" (deis/ modified)" if dirty else ""),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(m: dict, res: dict, args) -> str:
    cfg, base1 = res["config"], res["bare_one"]
    cfg_med, base1_med = statistics.median(c["serve_s"] for c in cfg), statistics.median(base1)
    post_med = statistics.median(c["post_s"] for c in cfg)
    cfg_ratio = cfg_med / base1_med
    sc, base20 = res["scale"], res["bare_many"]
    sc_router = statistics.median(s["router_all_s"] for s in sc)
    sc_post = statistics.median(s["post_s"] for s in sc)
    sc_up = statistics.median(s["api_up_s"] for s in sc)
    base20_med = statistics.median(base20)
    direct, routed = res["wrk_direct"], res["wrk_router"]
    direct_pinned, routed_pinned = res["wrk_direct_pinned"], res["wrk_router_pinned"]

    def med(runs, key):
        return statistics.median(r[key] for r in runs)
    d_rps, r_rps = med(direct, "rps"), med(routed, "rps")
    dp_rps, rp_rps = med(direct_pinned, "rps"), med(routed_pinned, "rps")
    share, share_pinned = r_rps / d_rps, rp_rps / dp_rps
    errors = sum(r["socket_errors"] + r["status_errors"] for r in direct + routed + direct_pinned + routed_pinned)

    def target_row(name: str, runs: list, base: list) -> str:
        rps = med(runs, "rps")
        return (f"| {name} | {fmt(rps, 0)} | {fmt(med(runs, 'p50_ms'), 2)} | {fmt(med(runs, 'p99_ms'), 2)} | "
                f"{rps / med(base, 'rps'):.2f} | {med(runs, 'p99_ms') / med(base, 'p99_ms'):.1f}x | "
                f"{sum(r['socket_errors'] + r['status_errors'] for r in runs)} |")
    ms = lambda s: fmt(s * 1000, 0)  # noqa: E731
    runs = lambda xs: ", ".join(ms(x) for x in xs)  # noqa: E731

    lines = [
        f"_Generated by `bench/runtime.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        "`--write` replaces this section._",
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']:.1f} GiB RAM, kernel {m['kernel']}; "
        f"load average when the run began: {m['load']}",
        f"- Software: Docker Engine {m['docker']}, {m['router']}, {m['wrk']}, Python {m['python']}; "
        f"code: commit {m['commit']}",
        "- Platform: as tests/e2e/test_runtime_api.py runs it: `deis.router.Router` (HAProxy) on free ports, a "
        "controller from `tests.conftest.start_live_controller` (gunicorn, SQLite, 2 workers x 8 threads) with "
        f"DEIS_SCHEDULER=docker in a namespace of its own, DEIS_SETTLE={args.settle:g}, "
        f"DEIS_STOP_GRACE={args.grace:g}; image: the busybox test image (`tests/scheduler/busybox_image.py`), "
        f"Procfile `web: {WEB}` (`/r` answers the release, `/h` the container).",
        "- Baselines, measured in the same run, interleaved with the platform's figures: a bare container "
        "of the same image (Docker SDK `containers.run(detach=True)` = `docker run -d`, bridge network, "
        "`--init`, `httpd -f -p 8080 -h /www`) from the call until `GET /` at the container's address "
        "answers 200; for scaling, 20 of them started one after another until all 20 answer.",
        f"- Config: `POST /v1/apps/<app>/config` (a new value each time: a new release, rolled out with "
        f"health checks) until `GET /r` through the router answers the new release, polled every "
        f"{POLL * 1000:g} ms while the POST is still being answered (since 2026-12-01; before, only "
        f"after it was: the POST also waits for the minimum uptime and the old processes' stop). "
        f"{len(cfg)} repetitions, median.",
        f"- Scale: `POST /v1/apps/<app>/scale {{\"web\": {SCALE_TO}}}` from web=1 until the router has "
        f"answered from all {SCALE_TO} containers (distinct `/h`); then scaled back to 1 between "
        f"repetitions. *API up*: until `GET /v1/apps/<app>/containers` lists {SCALE_TO} web processes "
        f"`up`, which needs DEIS_SETTLE s of uptime. {len(sc)} repetitions, median.",
        f"- Router: wrk, 1 thread, {args.connections} connections, {args.duration:g} s, against "
        "`http://127.0.0.1:<router port>/` with `Host: <app>.localhost` and against "
        "`http://<container ip>:<port>/` of the app's only web container (web=1); busybox httpd closes "
        f"every connection, so each request is a new connection to it and leaves a TIME_WAIT socket on "
        "the host: each run therefore gets a fresh release listening on a port of its own (PORT config "
        "var), else a run inherits the previous one's TIME_WAITs and crawls (~400 rps) once the ephemeral "
        f"ports towards the container are used up. {len(direct)} runs each, alternating which goes first, "
        "median. Two placements, interleaved: *shared*: wrk, HAProxy and the container all use both CPUs; "
        f"*app on its own CPU*: the container is limited to CPU {APP_CPU} (`docker update --cpuset-cpus "
        f"{APP_CPU}`, for direct and routed runs alike) while wrk (`taskset -c {ROUTER_CPU}`) and HAProxy's master "
        f"and workers (`sched_setaffinity`) run on CPU {ROUTER_CPU}. Why both: the router's cost is CPU time "
        "(HAProxy does 13 system calls per request here, an upstream connect included, and its access log "
        "costs nothing measurable); when everything shares two CPUs every cycle HAProxy spends is taken from "
        "the app, when the app has a CPU of its own the figure says whether the router limits what the "
        "app can serve.",
        "",
        "| measurement | platform | baseline | ratio | goal | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| config change -> new release served via router (median s) | {fmt(cfg_med, 2)} | {fmt(base1_med, 2)} "
        f"(one bare `docker run -d`) | {fmt(cfg_ratio, 1)}x | <= {GOAL_CONFIG_RATIO:g}x baseline | "
        f"{met(cfg_ratio <= GOAL_CONFIG_RATIO)} (median; "
        f"{sum(c['serve_s'] > GOAL_CONFIG_RATIO * base1_med for c in cfg)} of {len(cfg)} runs over) |",
        f"| scale web 1 -> {SCALE_TO}, all {SCALE_TO} served via router (median s) | {fmt(sc_router, 2)} | "
        f"{fmt(base20_med, 2)} ({SCALE_TO} bare containers, sequential) | {fmt(sc_router / base20_med, 1)}x | "
        f"< {GOAL_SCALE_S:g} s | {met(sc_router < GOAL_SCALE_S)} (median; "
        f"{sum(s['router_all_s'] >= GOAL_SCALE_S for s in sc)} of {len(sc)} runs >= {GOAL_SCALE_S:g} s) |",
        f"| router rps vs container direct, shared CPUs (median) | {fmt(r_rps, 0)} | {fmt(d_rps, 0)} (direct) | "
        f"{share:.0%} | >= {GOAL_RPS_SHARE:.0%} of direct | {met(share >= GOAL_RPS_SHARE)} |",
        f"| router rps vs container direct, app on its own CPU (median) | {fmt(rp_rps, 0)} | {fmt(dp_rps, 0)} "
        f"(direct) | {share_pinned:.0%} | >= {GOAL_RPS_SHARE:.0%} of direct | "
        f"{met(share_pinned >= GOAL_RPS_SHARE)} |",
        "",
        "Details (all runs):",
        "",
        "| measurement | runs (ms) | median (ms) |",
        "| --- | --- | ---: |",
        f"| bare container until it answers (baseline 1) | {runs(base1)} | {ms(base1_med)} |",
        f"| config: POST answered | {runs([c['post_s'] for c in cfg])} | {ms(post_med)} |",
        f"| config: new release served via router | {runs([c['serve_s'] for c in cfg])} | {ms(cfg_med)} |",
        f"| {SCALE_TO} bare containers until all answer (baseline 2) | {runs(base20)} | {ms(base20_med)} |",
        f"| scale 1 -> {SCALE_TO}: POST answered | {runs([s['post_s'] for s in sc])} | {ms(sc_post)} |",
        f"| scale 1 -> {SCALE_TO}: all served via router | {runs([s['router_all_s'] for s in sc])} | "
        f"{ms(sc_router)} |",
        f"| scale 1 -> {SCALE_TO}: API lists all `up` | {runs([s['api_up_s'] for s in sc])} | {ms(sc_up)} |",
        "",
        "| target (web=1) | rps | p50 ms | p99 ms | rps / direct | p99 / direct | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        target_row("shared CPUs: container direct (baseline)", direct, direct),
        target_row("shared CPUs: router (HAProxy, Host header)", routed, direct),
        target_row("app on its own CPU: container direct (baseline)", direct_pinned, direct_pinned),
        target_row("app on its own CPU: router (HAProxy, Host header)", routed_pinned, direct_pinned),
        "",
        f"Router runs (rps): shared CPUs: direct {', '.join(fmt(r['rps'], 0) for r in direct)}; "
        f"router {', '.join(fmt(r['rps'], 0) for r in routed)}. App on its own CPU: direct "
        f"{', '.join(fmt(r['rps'], 0) for r in direct_pinned)}; router "
        f"{', '.join(fmt(r['rps'], 0) for r in routed_pinned)}. Errors in all wrk runs: {errors}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = platform_parser(__doc__.splitlines()[0], SECTION)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the config change (default 5)")
    parser.add_argument("--scale-reps", type=int, default=3, help="repetitions of the scale-up (default 3)")
    parser.add_argument("--wrk-runs", type=int, default=3, help="wrk runs per target (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        parser.error("wrk is required (apt-get install -y wrk)")
    if (os.cpu_count() or 1) < 2:
        parser.error("the router runs need two CPUs at least (the app alone on one of them)")

    client = docker.from_env()
    image = ensure_image(client)
    m = machine(client)
    namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
    http_port, https_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="deis-bench-runtime-"))
    env = {"DEIS_SCHEDULER": "docker", "DEIS_DOCKER_NAMESPACE": namespace, "DEIS_STOP_GRACE": f"{args.grace:g}",
           "DEIS_SETTLE": f"{args.settle:g}", "DEIS_DEPLOY_TIMEOUT": "30", "DEIS_ROUTER_PORT": str(http_port),
           "DEIS_ROUTER_HTTPS_PORT": str(https_port)}
    res: dict = {"bare_one": [], "config": [], "bare_many": [], "scale": [], "wrk_direct": [], "wrk_router": [],
                 "wrk_direct_pinned": [], "wrk_router_pinned": []}
    router = stop_controller = None
    try:
        router = Router(workdir, http_port=http_port, https_port=https_port)
        router.start()
        controller, stop_controller = start_live_controller(workdir, env, deployer=True)
        live = LiveController(controller)
        user = live.register_admin("bench-admin")
        app = f"bench-{uuid.uuid4().hex[:6]}"
        assert user.post("/v1/apps", json={"id": app}).status_code == 201
        build = user.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": WEB}})
        if build.status_code != 201:
            raise RuntimeError(f"build: {build.status_code} {build.text}")
        p = Platform(client, image, namespace, http_port, user, app)
        wait_until(lambda: p.via_router("/r").status_code == 200, 30, "the first release to serve")
        bare_one(client, image, namespace)  # warm-up: first container start on this image

        print(f"1. config change vs bare container ({args.reps} repetitions)", file=sys.stderr)
        for i in range(args.reps):
            res["bare_one"].append(bare_one(client, image, namespace))
            res["config"].append(p.config_change(i))
            print(f"   bare {res['bare_one'][-1]:.3f} s, config -> served {res['config'][-1]['serve_s']:.3f} s "
                  f"(POST {res['config'][-1]['post_s']:.3f} s)", file=sys.stderr)

        print(f"2. scale web 1 -> {SCALE_TO} vs {SCALE_TO} bare containers ({args.scale_reps} repetitions)",
              file=sys.stderr)
        for i in range(args.scale_reps):
            res["bare_many"].append(bare_many(client, image, namespace, SCALE_TO))
            res["scale"].append(p.scale_up(SCALE_TO))
            s = res["scale"][-1]
            print(f"   bare x{SCALE_TO} {res['bare_many'][-1]:.3f} s; scale POST {s['post_s']:.3f} s, "
                  f"router all {s['router_all_s']:.3f} s, API up {s['api_up_s']:.3f} s", file=sys.stderr)
            p.scale(1)

        print("3. router vs direct (wrk)", file=sys.stderr)
        script = workdir / "wrk.lua"
        script.write_text(WRK_DONE_LUA)
        fresh_port = iter(range(9000, 9100))

        def fresh_target():
            # busybox httpd closes every connection, so each request leaves a TIME_WAIT socket on the
            # host for its (address, port): 5 s of load nearly exhausts the ephemeral ports towards one
            # destination and the next run would crawl. Each run gets a release listening on a port
            # of its own (PORT config var) so no run inherits the previous one's TIME_WAITs.
            p.config_change_values({"PORT": str(next(fresh_port))})
            return p.web_container()

        def measure(target: str, duration: float, pinned: bool = False) -> dict:
            container, address, port = fresh_target()
            if not pinned:
                return wrk_against(target, address, port, duration, False)
            container.update(cpuset_cpus=APP_CPU)
            pin_router(router, {ROUTER_CPU})
            try:
                return wrk_against(target, address, port, duration, True)
            finally:
                pin_router(router, set(range(os.cpu_count() or 1)))

        def wrk_against(target: str, address: str, port: int, duration: float, pinned: bool) -> dict:
            if target == "direct":
                return wrk_run(f"http://{address}:{port}/", None, duration, args.connections, script, pinned)
            return wrk_run(f"{p.router_url}/", p.host, duration, args.connections, script, pinned)

        measure("direct", 1)  # warm-up
        measure("router", 1)
        for i in range(args.wrk_runs):
            order = ("direct", "router") if i % 2 == 0 else ("router", "direct")
            for pinned in (False, True):
                suffix = "_pinned" if pinned else ""
                for target in order:
                    res[f"wrk_{target}{suffix}"].append(measure(target, args.duration, pinned))
                print(f"   {'app on its own CPU' if pinned else 'shared CPUs'}: direct "
                      f"{res[f'wrk_direct{suffix}'][-1]['rps']:.0f} rps, "
                      f"router {res[f'wrk_router{suffix}'][-1]['rps']:.0f} rps", file=sys.stderr)
        user.delete(f"/v1/apps/{app}")
    finally:
        if stop_controller:
            stop_controller()
        if router:
            router.stop()
        purge(client, namespace)
        shutil.rmtree(workdir, ignore_errors=True)

    body = report(m, res, args)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "results": res}, indent=2))
    if args.write:
        write_section(SECTION, body)
        print(f"wrote section '{SECTION[3:]}' of {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
