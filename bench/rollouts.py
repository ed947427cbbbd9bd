#!/usr/bin/env python3
"""Rollouts benchmark: the API answers while the deployer rolls changes out, and the platform's
processes come back by themselves.

    .venv/bin/python bench/rollouts.py            # prints a markdown report
    .venv/bin/python bench/rollouts.py --write    # ... and updates its section of docs/benchmarks.md
    .venv/bin/python bench/rollouts.py --json F   # ... and dumps every figure to F

The API records a change and answers at once (`Deis-Release`, `Deis-Rollout` headers); the deployer
(`python -m deis.controller deploy`) rolls it out and clients poll `GET /v1/apps/<app>/rollout`.
Every figure is set against a baseline measured in the same run:

1. API latency during slow deploys: `GET /v1/apps` (one sequential client, a user owning 10 apps)
   while those 10 apps each roll out a build whose web listens 20 s after it starts (so the
   deployer's workers, DEIS_DEPLOY_WORKERS, are all busy in health checks and the rest queue), with
   ten CLI-like waiters polling their app's rollout every 0.3 s; against the same user, waiters
   and sampler with nothing deploying (and with nobody polling at all). Also: how long each of the
   10 POSTs took to answer, each deploy's time to `deployed`, and the total, against one such
   deploy alone.
2. Config change served: `POST /v1/apps/<app>/config` until the router (Host: <app>.localhost)
   answers the new release (the web writes $DEIS_RELEASE to its index page before it listens), for
   an app at web=2 worker=2 against one at web=1, interleaved.
3. SIGKILL of each platform process (controller, deployer, builder, logger, router) of a supervised
   platform (`python -m deis.platform up`, its own data directory, ports and namespace) until the
   process is back (a new pid) and doing its job (controller: /healthz; deployer: its wake socket
   takes a datagram again; builder: SSH banner; router: an app served through it), with nobody acting.
   Baseline: one bare `docker run -d` of the test image until it answers HTTP.

Parts 1 and 2 run a platform as tests/e2e/conftest.py does (Router, start_live_controller, a
logger and a deployer Daemon). Everything it starts is stopped and its namespaces purged, even on
failure; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
from functools import partial
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

from bench.common import DOC, fmt, platform_parser, write_section  # noqa: E402
from bench.runtime import address_of, answers, bare_one, machine, start_bare  # noqa: E402
from bench.runtime import wait_until  # noqa: E402
from deis.platform import Controller, Daemon, Supervisor  # noqa: E402
from deis.router import Router  # noqa: E402
from deis.scheduler.docker import purge  # noqa: E402
from tests.conftest import ApiUser, LiveController, free_port, start_live_controller  # noqa: E402
from tests.scheduler.busybox_image import ensure_image  # noqa: E402

SECTION = "## Rollouts (bench/rollouts.py)"
WEB = "echo $DEIS_RELEASE > /www/index.html; exec httpd -f -p $PORT -h /www"
BOOT_S = 20
SLOW_WEB = f"sleep {BOOT_S}; {WEB}"
WORKER = "exec sleep 100000"
N_APPS = 10
DEPLOY_TIMEOUT = 60
CLI_POLL = 0.3  # deis.cli.common.ROLLOUT_POLL
SAMPLE_PAUSE = 0.04  # between two GET /v1/apps of the sampler: ~300 in 15 s
GOAL_LATENCY_RATIO, GOAL_LATENCY_MS, GOAL_POST_S, GOAL_CONFIG_RATIO, GOAL_BACK_S = 2.0, 100.0, 1.0, 1.2, 5.0
TARGETS = ("controller", "deployer", "builder", "logger", "router")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def quiet(user: ApiUser) -> ApiUser:
    """The same user, not waiting for rollouts after a change."""
    return ApiUser(user.base, user.username, user.token, settle=False)


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


wait_for = partial(wait_until, pause=0.05)  # the CLI's pace, not the router poll's


def rollout_of(session: ApiUser, app: str) -> dict:
    return session.get(f"/v1/apps/{app}/rollout", timeout=10).json()


def done(rollout: dict, generation: int) -> bool:
    return rollout.get("observed", 0) >= generation and rollout.get("phase") in ("deployed", "failed")


def posted(answer: requests.Response, expected: int, what: str) -> tuple[int | None, int]:
    if answer.status_code != expected:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text[:300]}")
    release = answer.headers.get("Deis-Release")
    return (int(release) if release else None), int(answer.headers.get("Deis-Rollout") or 0)


# --- 1. the API during slow deploys -------------------------------------------------------------

class Sampler(threading.Thread):
    """One client: GET /v1/apps, a pause, again; until stopped, `limit_n` requests or `limit_s` s."""

    def __init__(self, user: ApiUser, limit_n: int, limit_s: float):
        super().__init__(daemon=True)
        self.user, self.limit_n, self.limit_s = quiet(user), limit_n, limit_s
        self.ms: list[float] = []
        self.errors: list[str] = []
        self.count = None
        self.stop = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.limit_s
        while not self.stop.is_set() and len(self.ms) + len(self.errors) < self.limit_n and time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                answer = self.user.get("/v1/apps", timeout=10)
                ms = (time.perf_counter() - t0) * 1000
                if answer.status_code == 200:
                    self.ms.append(ms)
                    self.count = answer.json().get("count")
                else:
                    self.errors.append(str(answer.status_code))
            except requests.RequestException as exc:
                self.errors.append(type(exc).__name__)
            time.sleep(SAMPLE_PAUSE)

    def figures(self) -> dict:
        return {"n": len(self.ms), "errors": self.errors, "p50_ms": pct(self.ms, 50), "p99_ms": pct(self.ms, 99),
                "max_ms": max(self.ms) if self.ms else float("nan"), "apps_listed": self.count}


class Waiters:
    """A CLI per app waiting for its rollout (`deis` polls every 0.3 s): when each one finished."""

    def __init__(self, user: ApiUser, generations: dict[str, int], t0: float, limit_s: float):
        self.user, self.generations, self.t0, self.limit_s = quiet(user), dict(generations), t0, limit_s
        self.finished: dict[str, float] = {}
        self.final: dict[str, dict] = {}
        self.polls = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._wait, args=(app,), daemon=True) for app in generations]

    def start(self) -> "Waiters":
        for t in self.threads:
            t.start()
        return self

    def _wait(self, app: str) -> None:
        session = quiet(self.user)
        end = time.monotonic() + self.limit_s
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                rollout = rollout_of(session, app)
                self.polls += 1
                if self.generations[app] and done(rollout, self.generations[app]):
                    self.finished[app] = time.perf_counter() - self.t0
                    self.final[app] = rollout
                    return
            except requests.RequestException:
                pass
            self.stop.wait(CLI_POLL)

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        self.stop.set()

    def all_done(self) -> bool:
        return len(self.finished) == len(self.generations)


def settle_all(user: ApiUser, generations: dict[str, int], limit: float) -> dict[str, dict]:
    session = quiet(user)
    deadline = time.monotonic() + limit
    final: dict[str, dict] = {}
    while len(final) < len(generations):
        for app, gen in generations.items():
            if app not in final:
                rollout = rollout_of(session, app)
                if done(rollout, gen):
                    final[app] = rollout
        if time.monotonic() > deadline:
            raise TimeoutError(f"rollouts not finished after {limit:g} s: "
                               f"{ {a: rollout_of(session, a) for a in generations if a not in final} }")
        time.sleep(0.2)
    return final


def slow_deploys(owner: ApiUser, apps: list[str], image: str, window_s: float) -> dict:
    q = quiet(owner)
    res: dict = {}
    log(f"1. GET /v1/apps: quiet, {window_s:g} s")
    s = Sampler(owner, 3000, window_s)
    s.start()
    s.join(window_s + 15)
    res["quiet"] = s.figures()

    log(f"   ... with {len(apps)} waiters polling settled rollouts, {window_s:g} s")
    idle = Waiters(owner, {app: 10 ** 9 for app in apps}, time.perf_counter(), window_s + 5).start()
    s = Sampler(owner, 3000, window_s)
    s.start()
    s.join(window_s + 15)
    idle.stop.set()
    idle.join(5)
    res["idle"] = s.figures()
    res["idle"]["waiter_polls"] = idle.polls

    log(f"   ... while {len(apps)} slow deploys run (web listens {BOOT_S} s after it starts)")
    t0 = time.perf_counter()
    post_s, gens, releases = {}, {}, {}
    for app in apps:
        t = time.perf_counter()
        answer = q.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": SLOW_WEB}}, timeout=30)
        post_s[app] = time.perf_counter() - t
        releases[app], gens[app] = posted(answer, 201, f"build of {app}")
    all_posted = time.perf_counter() - t0
    limit = (N_APPS // 4 + 2) * (BOOT_S + DEPLOY_TIMEOUT)  # a bound only: the waves plus one
    waiters = Waiters(owner, gens, t0, limit).start()
    sampler = Sampler(owner, 10 ** 5, limit)
    sampler.start()
    # release states seen while deploying (pending / deploying) a moment after the POSTs
    time.sleep(1.0)
    states_early = {}
    for app in apps:
        r = q.get(f"/v1/apps/{app}/releases/v{releases[app]}", timeout=10)
        states_early[app] = r.json().get("state") if r.status_code == 200 else f"HTTP {r.status_code}"
    waiters.join(limit)
    sampler.stop.set()
    sampler.join(15)
    total = time.perf_counter() - t0
    res["during"] = sampler.figures()
    res["during"]["waiter_polls"] = waiters.polls
    res["post_s"] = post_s
    res["all_posted_s"] = all_posted
    res["deploy_s"] = waiters.finished
    res["phases"] = {app: r.get("phase") for app, r in waiters.final.items()}
    res["errors"] = {app: r.get("error") for app, r in waiters.final.items() if r.get("error")}
    res["unfinished"] = {app: rollout_of(q, app) for app in apps if app not in waiters.finished}
    res["states_early"] = states_early
    res["states_final"] = {app: q.get(f"/v1/apps/{app}/releases/v{releases[app]}", timeout=10).json().get("state")
                           for app in apps}
    res["total_s"] = max(waiters.finished.values()) if waiters.finished else total
    log(f"   POSTs {', '.join(f'{x:.3f}' for x in post_s.values())} s; deploys done at "
        f"{', '.join(f'{x:.1f}' for x in sorted(waiters.finished.values()))} s; "
        f"GET /v1/apps p50 {res['during']['p50_ms']:.1f} ms p99 {res['during']['p99_ms']:.1f} ms "
        f"(idle p50 {res['idle']['p50_ms']:.1f} p99 {res['idle']['p99_ms']:.1f})")
    return res


def one_slow_deploy(user: ApiUser, app: str, image: str) -> dict:
    """The baseline of the deploys' total: one app alone rolling out the same slow build."""
    q = quiet(user)
    t0 = time.perf_counter()
    answer = q.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": SLOW_WEB}}, timeout=30)
    post = time.perf_counter() - t0
    _, gen = posted(answer, 201, f"build of {app}")
    final = wait_for(lambda: (r := rollout_of(q, app)) and done(r, gen) and r, BOOT_S + 2 * DEPLOY_TIMEOUT,
                     f"the rollout of {app}", pause=CLI_POLL)
    return {"post_s": post, "deploy_s": time.perf_counter() - t0, "phase": final["phase"]}


# --- 2. config change served ----------------------------------------------------------------------

def via_router(port: int, app: str, timeout: float = 2.0) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/", headers={"Host": f"{app}.localhost"}, timeout=timeout)


def config_served(user: ApiUser, app: str, port: int, n: int) -> dict:
    """POST a new config value; poll the router every 10 ms (the rollout every 0.1 s) until the
    rollout is done and 20 answers in a row came from the new release. First: the first answer of
    the new release; all: the first answer after the last one of an older release."""
    q = quiet(user)
    t0 = time.perf_counter()
    answer = q.post(f"/v1/apps/{app}/config", json={"values": {"BENCH": str(n)}}, timeout=30)
    t_post = time.perf_counter() - t0
    version, gen = posted(answer, 201, f"config of {app}")
    release = f"v{version}"
    first = last_old = rolled = None
    errors = streak = 0
    after_last_old: float | None = None
    next_rollout = 0.0
    end = time.monotonic() + DEPLOY_TIMEOUT + 30
    while time.monotonic() < end:
        now = time.perf_counter() - t0
        try:
            r = via_router(port, app)
            body = r.text.strip()
            if r.status_code == 200 and body == release:
                first = now if first is None else first
                if after_last_old is None:
                    after_last_old = now
                streak += 1
            elif r.status_code == 200:
                last_old, after_last_old, streak = now, None, 0
            else:
                errors += 1
                streak = 0
        except requests.RequestException:
            errors += 1
            streak = 0
        if rolled is None and now >= next_rollout:
            if done(rollout_of(q, app), gen):
                rolled = time.perf_counter() - t0
            next_rollout = now + 0.1
        if rolled is not None and streak >= 20:
            break
        time.sleep(0.01)
    else:
        raise TimeoutError(f"{app}: {release} not served alone within {DEPLOY_TIMEOUT + 30} s "
                           f"(first {first}, rollout {rollout_of(q, app)})")
    return {"post_s": t_post, "first_s": first, "all_s": after_last_old, "rollout_s": rolled,
            "last_old_s": last_old, "errors": errors, "release": release}


def bare_parallel(client, image: str, namespace: str, n: int) -> float:
    """The engine's share: `n` bare containers started at once (as a rollout starts its missing
    processes, START_PARALLEL at a time) until every one answers HTTP."""
    t0 = time.perf_counter()
    started: list = []
    threads = [threading.Thread(target=lambda: started.append(start_bare(client, image, namespace)), daemon=True)
               for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        if len(started) != n:
            raise RuntimeError(f"only {len(started)} of {n} bare containers started")
        pending = list(started)
        while pending:
            for c in list(pending):
                try:
                    if answers(address_of(c)):
                        pending.remove(c)
                except requests.RequestException:
                    pass
            if time.perf_counter() - t0 > 30:
                raise TimeoutError(f"{len(pending)} bare containers did not answer")
            if pending:
                time.sleep(0.01)
        return time.perf_counter() - t0
    finally:
        for c in started:
            c.remove(force=True)


# --- 3. SIGKILL of each process of a supervised platform ---------------------------------------

def process_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1][:1] in ("Z", "X")
    except OSError:
        return True


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(") ", 1)[1].split()[1] == str(pid):
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found


def ssh_greets(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.settimeout(1)
            return conn.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


class Supervised:
    """`python -m deis.platform up` in a data directory, ports and namespace of its own."""

    def __init__(self, image: str, interval: str | None):
        self.image = image
        self.data_dir = Path(tempfile.mkdtemp(prefix="deis-bench-supervised-"))
        self.namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "DEIS_DATA_DIR": str(self.data_dir), "DEIS_CONTROLLER_PORT": str(free_port()),
                    "DEIS_ROUTER_PORT": str(free_port()), "DEIS_ROUTER_HTTPS_PORT": "0",
                    "DEIS_DOCKER_NAMESPACE": self.namespace, "DEIS_STOP_GRACE": "2", "DEIS_SETTLE": "1",
                    "DEIS_BUILDER_PORT": str(free_port()), "DEIS_SCHEDULER": "docker"}
        self.env.pop("DATABASE_URL", None)
        if interval:
            self.env["DEIS_RECONCILE_INTERVAL"] = interval
        else:
            self.env.pop("DEIS_RECONCILE_INTERVAL", None)
        self.port = int(self.env["DEIS_CONTROLLER_PORT"])
        self.router_port = int(self.env["DEIS_ROUTER_PORT"])
        self.builder_port = int(self.env["DEIS_BUILDER_PORT"])
        self.supervisor = Supervisor(self.data_dir)
        self.router = Router(self.data_dir, http_port=self.router_port, https_port=None)
        self.app = f"sup-{uuid.uuid4().hex[:6]}"
        self.release = None

    def platform(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deis.platform", command], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=150)

    def up(self) -> None:
        started = self.platform("up")
        if started.returncode != 0:
            raise RuntimeError(f"deis.platform up failed:\n{started.stdout}\n{started.stderr}")
        self.names = sorted(self.supervisor.processes())
        live = LiveController(Controller(data_dir=self.data_dir, port=self.port))
        self.user = live.register("admin")
        q = quiet(self.user)
        posted(q.post("/v1/apps", json={"id": self.app}), 201, "create app")
        version, gen = posted(q.post(f"/v1/apps/{self.app}/builds",
                                     json={"image": self.image, "procfile": {"web": WEB}}), 201, "build")
        self.release = f"v{version}"
        wait_for(lambda: done(rollout_of(q, self.app), gen), 60, "the supervised app's rollout")
        wait_for(self.serves, 30, "the supervised app served via its router")

    def down(self) -> None:
        try:
            self.platform("down")
        finally:
            purge(docker.from_env(), self.namespace)
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def program(self, target: str) -> str:
        if target == "deployer":
            return "deployer" if "deployer" in self.names else "reconciler"
        return target

    def pid(self, target: str) -> int | None:
        if target == "router":
            return self.router.master_pid()
        info = self.supervisor.processes().get(self.program(target)) or {}
        return info.get("pid") or None

    def serves(self) -> bool:
        r = via_router(self.router_port, self.app, timeout=1)
        return r.status_code == 200 and r.text.strip() == self.release

    def wake_socket_bound(self) -> bool:
        """An empty datagram to the deployer's wake socket is taken (the deployer ignores it);
        the file a killed deployer left refuses it."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(b"", str(self.data_dir / "deployer.sock"))
                return True
            except OSError:
                return False

    def ready(self, target: str, before: dict) -> bool:
        if target == "controller":
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        if target == "deployer":
            return self.wake_socket_bound()
        if target == "builder":
            return ssh_greets(self.builder_port)
        if target == "router":
            return self.serves()
        return True  # the logger: a new process is all there is to see from outside

    def all_well(self) -> bool:
        """Every program RUNNING (up for supervisor's startsecs: a kill now is restarted at once,
        without backoff), the router up and the app served."""
        states = self.supervisor.processes()
        return all(i["statename"] == "RUNNING" for i in states.values()) and self.router.running() \
            and self.serves() and requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200

    def kill(self, target: str, limit: float = 40.0, pause: float = 0.0) -> dict:
        wait_for(self.all_well, 60, "the supervised platform to be well before a kill", pause=0.2)
        time.sleep(pause)
        pid = self.pid(target)
        before: dict = {}
        victims = [pid, *children_of(pid)]
        t0 = time.perf_counter()
        try:
            if target != "router" and os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)  # supervisord starts each program in a group of its own
            for victim in victims:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except ProcessLookupError:
            pass
        t_pid = t_ready = None
        new_pid = None
        end = time.monotonic() + limit
        while time.monotonic() < end and (t_pid is None or t_ready is None):
            now = time.perf_counter() - t0
            try:
                current = self.pid(target)
                if t_pid is None and current and current != pid:
                    t_pid, new_pid = now, current
                if t_pid is not None and t_ready is None and all(process_gone(v) for v in victims) \
                        and self.ready(target, before):
                    t_ready = time.perf_counter() - t0
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.02)
        return {"target": target, "program": self.program(target) if target != "router" else "haproxy",
                "old_pid": pid, "new_pid": new_pid, "killed": len(victims), "pid_s": t_pid, "ready_s": t_ready,
                "pause_s": pause}


# --- the report -----------------------------------------------------------------------------------

def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def tally(states: dict) -> str:
    values = [str(v) for v in states.values()]
    return ", ".join(f"{v} x{values.count(v)}" for v in sorted(set(values)))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def report(m: dict, res: dict, args) -> str:
    d = res["deploys"]
    quiet_, idle, during = d["quiet"], d["idle"], d["during"]
    lat_ratio = during["p99_ms"] / idle["p99_ms"]
    p50_ratio = during["p50_ms"] / idle["p50_ms"]
    posts = list(d["post_s"].values())
    deploys = sorted(d["deploy_s"].values())
    single = res["single_deploy"]
    waves = -(-N_APPS // args.deploy_workers)
    c1, c2 = res["config_web1"], res["config_web2"]
    first1, first2 = med(c["first_s"] for c in c1), med(c["first_s"] for c in c2)
    all1, all2 = med(c["all_s"] for c in c1), med(c["all_s"] for c in c2)
    roll1, roll2 = med(c["rollout_s"] for c in c1), med(c["rollout_s"] for c in c2)
    bare = med(res["bare_s"])
    b1, b4 = med(res["bare1_s"]), med(res["bare4_s"])
    ms = lambda s: fmt(s * 1000, 0)  # noqa: E731
    secs = lambda xs: ", ".join(fmt(x, 2) if x is not None else "-" for x in xs)  # noqa: E731
    kills = res["kills"]
    unfinished = d["unfinished"]

    lines = [
        f"_Generated by `bench/rollouts.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        "`--write` replaces this section._",
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']:.1f} GiB RAM, kernel {m['kernel']}; "
        f"load average when the run began: {m['load']}",
        f"- Software: Docker Engine {m['docker']}, {m['router']}, Python {m['python']}; code: commit {m['commit']}",
        "- Platform for 1 and 2: as tests/e2e/conftest.py runs it: `deis.router.Router` (HAProxy) on free ports, "
        "a controller from `tests.conftest.start_live_controller` (gunicorn, SQLite, 2 workers x 8 threads), "
        "a logger and a deployer (`python -m deis.controller deploy`) as `deis.platform.Daemon`s with the "
        f"controller's environment; DEIS_SCHEDULER=docker in a namespace of its own, DEIS_SETTLE={args.settle:g}, "
        f"DEIS_STOP_GRACE={args.grace:g}, DEIS_DEPLOY_TIMEOUT={DEPLOY_TIMEOUT}, "
        f"DEIS_DEPLOY_WORKERS={args.deploy_workers}; image: the busybox test image; web "
        f"`{WEB}` (the page is the release), slow web `{SLOW_WEB}`, worker `{WORKER}`.",
        "",
        "| measurement | platform | baseline | ratio | goal | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| `GET /v1/apps` p99 during {N_APPS} slow deploys (ms) | {fmt(during['p99_ms'])} | {fmt(idle['p99_ms'])} "
        f"(nothing deploying) | {fmt(lat_ratio, 2)}x | <= {GOAL_LATENCY_RATIO:g}x and < {GOAL_LATENCY_MS:g} ms | "
        f"{met(lat_ratio <= GOAL_LATENCY_RATIO and during['p99_ms'] < GOAL_LATENCY_MS)} |",
        f"| `GET /v1/apps` p50 during {N_APPS} slow deploys (ms) | {fmt(during['p50_ms'])} | {fmt(idle['p50_ms'])} "
        f"(nothing deploying) | {fmt(p50_ratio, 2)}x | <= {GOAL_LATENCY_RATIO:g}x and < {GOAL_LATENCY_MS:g} ms | "
        f"{met(p50_ratio <= GOAL_LATENCY_RATIO and during['p50_ms'] < GOAL_LATENCY_MS)} |",
        f"| {N_APPS} build POSTs answered (slowest, s) | {fmt(max(posts), 3)} | {fmt(idle['p50_ms'] / 1000, 3)} "
        f"(`GET /v1/apps` p50) | {fmt(max(posts) / (idle['p50_ms'] / 1000), 1)}x | < {GOAL_POST_S:g} s | "
        f"{met(max(posts) < GOAL_POST_S)} |",
        f"| {N_APPS} slow deploys at once, all deployed (s) | {fmt(d['total_s'], 1)} | {fmt(single['deploy_s'], 1)} "
        f"(one alone) | {fmt(d['total_s'] / single['deploy_s'], 2)}x | ~{waves}x ({waves} waves of "
        f"{args.deploy_workers} workers) | {'all deployed' if not unfinished and set(d['phases'].values()) == {'deployed'} else '**not all deployed**'} |",
        f"| config change -> new release served via router, web=2 worker=2 (median s) | {fmt(first2, 2)} | "
        f"{fmt(first1, 2)} (web=1) | {fmt(first2 / first1, 2)}x | <= {GOAL_CONFIG_RATIO:g}x | "
        f"{met(first2 / first1 <= GOAL_CONFIG_RATIO)} |",
        f"| ... until only the new release is served (median s) | {fmt(all2, 2)} | {fmt(all1, 2)} (web=1) | "
        f"{fmt(all2 / all1, 2)}x | <= {GOAL_CONFIG_RATIO:g}x | {met(all2 / all1 <= GOAL_CONFIG_RATIO)} |",
        f"| (engine's share) 4 bare containers started at once, all answering (median s) | {fmt(b4, 2)} | "
        f"{fmt(b1, 2)} (one) | {fmt(b4 / b1, 2)}x | - | - |",
    ]
    for target in TARGETS:
        runs = [k for k in kills if k["target"] == target]
        if not runs:
            continue
        ready = [k["ready_s"] for k in runs]
        worst = max((r for r in ready if r is not None), default=float("nan"))
        ok = all(r is not None and r < GOAL_BACK_S for r in ready)
        lines.append(f"| SIGKILL of the {target} ({runs[0]['program']}) -> back and working (worst of {len(runs)}, s) | "
                     f"{fmt(worst, 2)} | {fmt(bare, 2)} (one bare `docker run -d`) | {fmt(worst / bare, 1)}x | "
                     f"< {GOAL_BACK_S:g} s | {met(ok)} |")
    lines += [
        "",
        f"**1. The API during slow deploys.** The owner of {N_APPS} apps (each first deployed with the fast web) "
        f"posts a build with the slow web to each, one after another; ten waiters (one per app, as `deis` does: "
        f"`GET /v1/apps/<app>/rollout` every {CLI_POLL:g} s) wait for the rollouts while one sampler sends "
        f"`GET /v1/apps` ({quiet_['apps_listed']} apps listed) in a loop with {SAMPLE_PAUSE * 1000:g} ms pauses "
        "until the last rollout is done. Baselines: the same sampler for "
        f"{args.window:g} s with the ten waiters polling settled rollouts (*nothing deploying*), and alone (*quiet*).",
        "",
        "| `GET /v1/apps` | requests | errors | p50 ms | p99 ms | max ms | rollout polls |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| quiet (no waiters, nothing deploying) | {quiet_['n']} | {len(quiet_['errors'])} | {fmt(quiet_['p50_ms'])} | "
        f"{fmt(quiet_['p99_ms'])} | {fmt(quiet_['max_ms'])} | 0 |",
        f"| nothing deploying, {N_APPS} waiters polling (baseline) | {idle['n']} | {len(idle['errors'])} | "
        f"{fmt(idle['p50_ms'])} | {fmt(idle['p99_ms'])} | {fmt(idle['max_ms'])} | {idle['waiter_polls']} |",
        f"| {N_APPS} slow deploys, {N_APPS} waiters polling | {during['n']} | {len(during['errors'])} | "
        f"{fmt(during['p50_ms'])} | {fmt(during['p99_ms'])} | {fmt(during['max_ms'])} | {during['waiter_polls']} |",
        "",
        f"- The {N_APPS} build POSTs answered in (ms): {', '.join(ms(x) for x in posts)} "
        f"(all {N_APPS} in {fmt(d['all_posted_s'], 2)} s). Release states 1 s after the last POST: "
        f"{tally(d['states_early'])}; at the end: {tally(d['states_final'])}.",
        f"- Each deploy, from the first POST until its waiter saw it `deployed` (s, sorted): {secs(deploys)}; "
        f"the last at {fmt(d['total_s'], 1)} s. DEIS_DEPLOY_WORKERS={args.deploy_workers}: "
        f"{N_APPS} apps in {waves} waves of at most {args.deploy_workers}, each wave at least the "
        f"{BOOT_S} s the web takes to listen. Baseline: one app alone, the same build: POST "
        f"{ms(single['post_s'])} ms, deployed after {fmt(single['deploy_s'], 1)} s ({single['phase']}).",
    ]
    if unfinished or d["errors"] or set(d["phases"].values()) - {"deployed"}:
        lines.append(f"- **Not every rollout was deployed**: phases {d['phases']}, errors {d['errors']}, "
                     f"unfinished {unfinished}.")
    errs = [c["errors"] for c in c1 + c2]
    lines += [
        "",
        f"**2. Config change served.** `POST /v1/apps/<app>/config` with a new value until the router "
        f"(`Host: <app>.localhost`, polled every 10 ms) answers the new release: *first*, its first "
        f"answer; *only new*: the first answer after the last one from an older release. "
        f"{len(c1)} repetitions per app, interleaved (alternating which goes first), medians.",
        "",
        "| app | POST answered (ms) | first answer of the new release (s) | only new (s) | rollout `deployed` (s) |",
        "| --- | --- | --- | --- | --- |",
        f"| web=1 (baseline) | {', '.join(ms(c['post_s']) for c in c1)} | {secs([c['first_s'] for c in c1])} "
        f"(median {fmt(first1, 2)}) | {secs([c['all_s'] for c in c1])} (median {fmt(all1, 2)}) | "
        f"{secs([c['rollout_s'] for c in c1])} (median {fmt(roll1, 2)}) |",
        f"| web=2 worker=2 | {', '.join(ms(c['post_s']) for c in c2)} | {secs([c['first_s'] for c in c2])} "
        f"(median {fmt(first2, 2)}) | {secs([c['all_s'] for c in c2])} (median {fmt(all2, 2)}) | "
        f"{secs([c['rollout_s'] for c in c2])} (median {fmt(roll2, 2)}) |",
        f"| bare containers (engine only): one / four at once, until all answer | "
        f"{secs(res['bare1_s'])} / {secs(res['bare4_s'])} | median {fmt(b1, 2)} / {fmt(b4, 2)} | | |",
        "",
        f"Failed router answers during the changes (non-200 or no answer): {sum(errs)} in all. "
        "Reading it: a rollout starts the missing web processes first (in parallel, deis/scheduler/docker.py "
        "`_rollout`), switches the route once they answer their check, and only then starts the other types "
        "(checked during the probation), so at web=2 worker=2 the switch waits for two container starts, not "
        "four; the bare row shows what four parallel starts cost the engine alone "
        f"here ({fmt(b4 / b1, 1)}x one), against the platform's {fmt(first2 / first1, 1)}x. The route "
        "switches to both new web processes in one step: *first* and *only new* coincide.",
        "",
        f"**3. SIGKILL of each platform process.** A supervised platform (`python -m deis.platform up`: "
        "supervisord runs the controller, router (HAProxy in the foreground), logger, deployer and builder) "
        "in a data directory, ports and namespace of its own, "
        f"DEIS_RECONCILE_INTERVAL {res['interval'] or 'unset (default 10 s)'}, one app at web=1. "
        "Each process is SIGKILLed with its process group (the controller: gunicorn's master and workers; "
        "the router: HAProxy's master and worker) once every program has been RUNNING for supervisor's "
        "startsecs; *pid*: until a new pid is there (supervisord's `getAllProcessInfo`, the router's "
        "pid file); *working*: until the old processes are gone and the new one does its job (controller: "
        "`/healthz` answers 200; deployer: its wake socket `deployer.sock` takes a datagram again; builder: its SSH banner; router: "
        "the app served through it; logger: the new pid). Nobody acts meanwhile. "
        f"{args.kill_reps} rounds. Baseline: one bare `docker run -d` of the test image until it answers "
        f"HTTP, median of {len(res['bare_s'])}: {fmt(bare, 2)} s.",
        "",
        "| process | new pid (s) | working (s) |",
        "| --- | --- | --- |",
    ]
    for target in TARGETS:
        runs = [k for k in kills if k["target"] == target]
        if runs:
            lines.append(f"| {target} ({runs[0]['program']}) | {secs([k['pid_s'] for k in runs])} | "
                         f"{secs([k['ready_s'] for k in runs])} |")
    lines.append("")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------

def part_one_and_two(client, image: str, args, res: dict) -> None:
    namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
    http_port, https_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="deis-bench-rollouts-"))
    env = {"DEIS_SCHEDULER": "docker", "DEIS_DOCKER_NAMESPACE": namespace, "DEIS_STOP_GRACE": f"{args.grace:g}",
           "DEIS_SETTLE": f"{args.settle:g}", "DEIS_DEPLOY_TIMEOUT": str(DEPLOY_TIMEOUT),
           "DEIS_ROUTER_PORT": str(http_port), "DEIS_ROUTER_HTTPS_PORT": str(https_port),
           "DEIS_DEPLOY_WORKERS": str(args.deploy_workers)}
    router = stop_controller = None
    daemons: list[Daemon] = []
    try:
        router = Router(workdir, http_port=http_port, https_port=https_port)
        router.start()
        controller, stop_controller = start_live_controller(workdir, env)
        daemons = [Daemon("logger", [sys.executable, "-m", "deis.logger", "--data-dir", str(workdir)], workdir),
                   Daemon("deployer", [sys.executable, "-m", "deis.controller", "deploy"], workdir)]
        for daemon in daemons:
            daemon.start(controller.environment)
        live = LiveController(controller)
        admin = live.register_admin("bench-admin")  # an admin: it would see every app
        owner = live.register("bench-owner")
        tag = uuid.uuid4().hex[:6]
        apps = [f"slow{i}-{tag}" for i in range(N_APPS)]
        single = f"single-{tag}"
        cfg1, cfg2 = f"cfg1-{tag}", f"cfg2-{tag}"
        qo, qa = quiet(owner), quiet(admin)
        gens = {}
        for app in apps:
            posted(qo.post("/v1/apps", json={"id": app}), 201, f"create {app}")
            gens[app] = posted(qo.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": WEB}}),
                               201, f"build of {app}")[1]
        for app in (single, cfg1, cfg2):
            posted(qa.post("/v1/apps", json={"id": app}), 201, f"create {app}")
            gens[app] = posted(qa.post(f"/v1/apps/{app}/builds",
                                       json={"image": image, "procfile": {"web": WEB, "worker": WORKER}}),
                               201, f"build of {app}")[1]
        log(f"   deploying {len(gens)} apps (fast web) first")
        settle_all(owner, {a: g for a, g in gens.items() if a in apps}, 120)
        settle_all(admin, {a: g for a, g in gens.items() if a not in apps}, 120)
        _, gen = posted(qa.post(f"/v1/apps/{cfg2}/scale", json={"web": 2, "worker": 2}), 204, "scale")
        settle_all(admin, {cfg2: gen}, 60)
        for app in (cfg1, cfg2):
            wait_for(lambda: via_router(http_port, app).status_code == 200, 30, f"{app} served via the router")

        res["deploys"] = slow_deploys(owner, apps, image, args.window)
        log("   baseline: one slow deploy alone")
        res["single_deploy"] = one_slow_deploy(admin, single, image)
        log(f"   one alone: {res['single_deploy']['deploy_s']:.1f} s")

        log(f"2. config change served: web=2 worker=2 vs web=1 ({args.reps} repetitions)")
        res["config_web1"], res["config_web2"], res["bare1_s"], res["bare4_s"] = [], [], [], []
        bare_one(client, image, namespace)  # warm-up
        for i in range(args.reps):
            res["bare1_s"].append(bare_one(client, image, namespace))
            res["bare4_s"].append(bare_parallel(client, image, namespace, 4))
            order = ((cfg1, "config_web1"), (cfg2, "config_web2"))
            for app, key in (order if i % 2 == 0 else order[::-1]):
                res[key].append(config_served(admin, app, http_port, i))
            log(f"   bare x1 {res['bare1_s'][-1]:.2f} s, x4 at once {res['bare4_s'][-1]:.2f} s; "
                f"web=1 first {res['config_web1'][-1]['first_s']:.2f} s all {res['config_web1'][-1]['all_s']:.2f} s; "
                f"web=2 worker=2 first {res['config_web2'][-1]['first_s']:.2f} s "
                f"all {res['config_web2'][-1]['all_s']:.2f} s")
    finally:
        for daemon in daemons:
            daemon.stop()
        if stop_controller:
            stop_controller()
        if router:
            router.stop()
        purge(client, namespace)
        shutil.rmtree(workdir, ignore_errors=True)


def part_three(client, image: str, args, res: dict) -> None:
    namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
    try:
        res["bare_s"] = [bare_one(client, image, namespace) for _ in range(args.bare_runs)]
    finally:
        purge(client, namespace)
    sup = Supervised(image, args.interval)
    res["interval"] = args.interval
    res["kills"] = []
    try:
        log("3. supervised platform: up")
        sup.up()
        log(f"   programs: {', '.join(sup.names)}")
        for rnd in range(args.kill_reps):
            for target in TARGETS:
                k = sup.kill(target)
                res["kills"].append(k)
                log(f"   round {rnd + 1}: SIGKILL {target} ({k['program']}, {k['killed']} processes): new pid "
                    f"{k['pid_s'] if k['pid_s'] is None else round(k['pid_s'], 2)} s, working "
                    f"{k['ready_s'] if k['ready_s'] is None else round(k['ready_s'], 2)} s")
        res["restarts"] = dict(sup.supervisor.restarts())
    finally:
        sup.down()


def main(argv=None) -> int:
    parser = platform_parser(__doc__.splitlines()[0], SECTION)
    parser.add_argument("--reps", type=int, default=5, help="config changes per app (default 5)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of each baseline sample (default 15)")
    parser.add_argument("--deploy-workers", type=int, default=4, help="DEIS_DEPLOY_WORKERS (default 4)")
    parser.add_argument("--kill-reps", type=int, default=3, help="SIGKILL rounds over every process (default 3)")
    parser.add_argument("--bare-runs", type=int, default=5, help="bare container starts for part 3's baseline")
    parser.add_argument("--interval", default=None,
                        help="DEIS_RECONCILE_INTERVAL of the supervised platform (default: unset, 10 s)")
    parser.add_argument("--only", choices=["12", "3"], help="run only parts 1-2 or part 3 (no report)")
    args = parser.parse_args(argv)

    client = docker.from_env()
    image = ensure_image(client)
    m = machine(client)
    res: dict = {}
    t0 = time.monotonic()
    if args.only != "3":
        part_one_and_two(client, image, args, res)
    if args.only != "12":
        part_three(client, image, args, res)
    res["bench_s"] = time.monotonic() - t0
    log(f"bench ran {res['bench_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "results": res}, indent=1, default=str))
    if args.only:
        print(json.dumps(res, indent=1, default=str))
        return 0
    body = report(m, res, args)
    print(body)
    if args.write:
        write_section(SECTION, body)
        log(f"wrote section '{SECTION[3:]}' of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
