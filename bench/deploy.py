#!/usr/bin/env python3
"""Deploy benchmark: how long `git push` takes until the pushed code serves through the router.

    .venv/bin/python bench/deploy.py            # prints a markdown table (~4 minutes)
    .venv/bin/python bench/deploy.py --write    # ... and updates docs/benchmarks.md

It runs a whole platform of its own as tests/builder/conftest.py does: a Router (HAProxy) on free
ports, a controller (`start_live_controller`, gunicorn) with the Docker scheduler in a namespace of
its own, and the builder's SSH server (`python -m deis.builder serve`) on a free port, all with one
temporary data directory; one user with an ed25519 key pushes with real git over real SSH. A push is
timed from the start of `git push deis master` until `GET /` through the router (Host header, polled
every 10 ms from the moment the push starts) answers a marker text unique to that push. The builder's
output (`remote:` lines) is timestamped as it arrives, which splits a push into its steps.

1. cold push: the Flask test app (tests/builder/apps/flask) on a new app, so its build cache is
   empty (no cached virtualenv, no pip cache). Baseline, interleaved: `python3 -m venv` + `pip install
   -r requirements.txt` of the same file in one bare `docker run` of the run image (the stack's
   python is "externally managed": pip needs a virtualenv, as the buildpack makes one), as root, with
   the builder's own environment (deis.builder.slug.build_environment: CA bundle variables, PIP_*
   settings of the host), the CA bundle mounted as the builder mounts it, the builder's limits, and an
   empty pip cache.
2. warm push: one line of app.py changed (same requirements) on the app of the last cold push.
3. Dockerfile push: tests/builder/conftest.py's BUILDER_DOCKERFILE (FROM deis/stack:bookworm-1,
   `COPY . /srv`, python3 -m http.server) on a new app, then a second push changing one line of
   index.html. Baseline, interleaved: one bare container of the stack image (Docker SDK
   `containers.run(detach=True)` = `docker run -d`, bridge network, `--init`, python3 -m http.server
   8080) from the call until `GET /` at its address answers 200.

Everything it starts (containers labelled with its namespace, the apps' images, router, controller,
builder, data directory) is removed at the end, even on failure.
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

from bench.common import DOC, fmt, platform_parser, write_section  # noqa: E402
from bench.runtime import address_of  # noqa: E402
from deis.scheduler.docker import purge  # noqa: E402

SECTION = "## Deploy (bench/deploy.py)"
FLASK_DIR = ROOT / "tests" / "builder" / "apps" / "flask"
GOAL_COLD_RATIO, GOAL_WARM_S, PEER_WARM_S = 1.5, 4.0, 4.4
POLL = 0.01
BARE_CMD = ["python3", "-m", "http.server", "8080", "--directory", "/tmp"]

# Milestones of a push: (key, regex on the builder's line without "remote: ", what precedes it).
FLASK_STEPS = [
    ("detected", r"^-----> .* app detected",
     "SSH connection and key check, pack upload, pre-receive hook (a standard-library python) hands "
     "the push to the builder's server, app lock, push and config hooks, checkout (git archive), the "
     "source copied into the build container (started when the SSH session began), buildpack detect"),
    ("python", r"^-----> Using Python", "python buildpack: interpreter lookup (runtime.txt)"),
    ("venv", r"^-----> (Using cached virtualenv|Creating a virtualenv)",
     "dependency key (sha256 of the requirement files)"),
    ("install", r"^-----> Installing requirements", "cached virtualenv copied into /app (`cp -a`), or "
     "`python3 -m venv` when cold"),
    ("procfile", r"^-----> Procfile declares",
     "`pip install -r requirements.txt` (a no-op when warm; download + install when cold, then the "
     "virtualenv copied into the cache), profile.d, `chown -R` /app, cleanup, container exit"),
    ("compiled", r"^-----> Compiled slug size", "`docker commit` of the build container + image size lookups"),
]
DOCKER_STEPS = [
    ("building", r"^-----> Building Docker image",
     "SSH connection and key check, pack upload, pre-receive hook (a standard-library python) hands "
     "the push to the builder's server, app lock, push and config hooks, checkout (git archive)"),
    ("built", r"^\s*Successfully tagged", "`docker build` (context upload, FROM, COPY, WORKDIR, EXPOSE, CMD)"),
    ("procfile", r"^-----> Procfile declares", "Procfile read, image inspected"),
]
LAUNCH_STEPS = [
    ("web_created", None, "(buildpack builds: the build container removed) the controller's build hook: "
     "build and release recorded, the new web container created (the engine's `Created` time)"),
    ("web_started", None, "the engine starts the container (its `State.StartedAt`)"),
    ("served", None, "the app boots, health check (TCP, polled), router switched: the new text serves"),
    ("launched", r"^-----> Launching\.\.\. done", "old release's container stopped (SIGTERM) and removed, "
     "hook answers"),
    ("exit", None, "git updates the branch, `git push` exits"),
]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the platform -------------------------------------------------------------------------------

class Bench:
    """A platform of its own: router, controller, builder; one pushing user."""

    def __init__(self, workdir: Path, client, args):
        self.workdir, self.client, self.args = workdir, client, args
        self.namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
        self.http_port = self.ssh_port = 0
        self.router = self.stop_controller = self.server = self.log = None
        self.apps: list[str] = []
        self.user = None

    def start(self) -> None:
        from deis.router import Router
        from tests.builder.conftest import GitUser, builder_new_key, builder_wait_for_port
        from tests.conftest import LiveController, free_port, start_live_controller

        self.http_port, https_port, self.ssh_port = free_port(), free_port(), free_port()
        data_dir = self.workdir / "data"
        data_dir.mkdir()
        env = {"DEIS_SCHEDULER": "docker", "DEIS_DOCKER_NAMESPACE": self.namespace,
               "DEIS_STOP_GRACE": f"{self.args.grace:g}", "DEIS_SETTLE": f"{self.args.settle:g}",
               "DEIS_DEPLOY_TIMEOUT": "60", "DEIS_ROUTER_PORT": str(self.http_port),
               "DEIS_ROUTER_HTTPS_PORT": str(https_port)}
        self.router = Router(data_dir, http_port=self.http_port, https_port=https_port)
        self.router.start()
        controller, self.stop_controller = start_live_controller(data_dir, env, deployer=True)
        live = LiveController(controller)
        live.register_admin("bench-admin")
        self.log = open(self.workdir / "builder-server.log", "ab")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "deis.builder", "serve", "--host", "127.0.0.1"],
            env={**os.environ, "DEIS_DATA_DIR": str(data_dir), "DEIS_CONTROLLER_URL": controller.url,
                 "DEIS_BUILDER_PORT": str(self.ssh_port)},
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        builder_wait_for_port(self.ssh_port)
        api = live.register("bench-dev")
        home = self.workdir / "home"
        home.mkdir()
        public = builder_new_key(home / "id_ed25519")
        answer = api.post("/v1/keys", json={"id": "bench-dev-key", "public": public})
        if answer.status_code != 201:
            raise RuntimeError(f"key: {answer.status_code} {answer.text}")
        self.user = GitUser(api, home / "id_ed25519", self.ssh_port, home)

    def new_app(self, prefix: str) -> str:
        app = f"{prefix}-{uuid.uuid4().hex[:6]}"
        answer = self.user.api.post("/v1/apps", json={"id": app})
        if answer.status_code != 201:
            raise RuntimeError(f"app: {answer.status_code} {answer.text}")
        self.apps.append(app)
        return app

    def delete_app(self, app: str) -> None:
        self.user.api.delete(f"/v1/apps/{app}")

    def repo(self, app: str, files: dict[str, str]) -> Path:
        from tests.builder.conftest import git_make_repo
        return git_make_repo(self.workdir / "repos" / app, files, self.user, app)

    def commit(self, repo: Path, files: dict[str, str]) -> None:
        from tests.builder.conftest import git_commit
        git_commit(repo, files, self.user)

    def push(self, repo: Path, app: str, path: str, marker: str, timeout: float = 600) -> dict:
        """`git push deis master` while polling the router for `marker`; every output line timed."""
        url, host = f"http://127.0.0.1:{self.http_port}{path}", f"{app}.localhost"
        stop, served = threading.Event(), {}
        t0, wall0 = time.perf_counter(), time.time()

        def poll():
            while not stop.is_set():
                try:
                    answer = requests.get(url, headers={"Host": host}, timeout=2)
                    if answer.status_code == 200 and marker in answer.text:
                        served["t"] = time.perf_counter() - t0
                        return
                except requests.RequestException:
                    pass
                time.sleep(POLL)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        proc = subprocess.Popen(["git", "push", "deis", "master"], cwd=repo, env=self.user.env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines: list[tuple[float, str]] = []
        pending = b""
        while True:
            chunk = proc.stderr.read1(65536)
            now = time.perf_counter() - t0
            if not chunk:
                break
            pending += chunk
            *whole, pending = re.split(rb"[\r\n]", pending)
            lines.extend((now, w.decode(errors="replace").rstrip()) for w in whole if w.strip())
        if pending.strip():
            lines.append((time.perf_counter() - t0, pending.decode(errors="replace").rstrip()))
        rc = proc.wait(timeout)
        t_exit = time.perf_counter() - t0
        if rc != 0:
            stop.set()
            raise RuntimeError(f"git push of {app} failed ({rc}):\n" + "\n".join(t for _, t in lines))
        poller.join(60)
        stop.set()
        if "t" not in served:
            raise RuntimeError(f"{app}: the router never served {marker!r}")
        remote = [(t, text[len("remote: "):]) for t, text in lines if text.startswith("remote: ")]
        return {"serve_s": served["t"], "exit_s": t_exit, "lines": remote, "t0": t0,
                "t1": t0 + max(t_exit, served["t"]), **self.web_container_times(app, wall0)}

    def web_container_times(self, app: str, wall0: float) -> dict:
        """When the engine created and started the app's newest web container, in s from wall0."""
        found = self.client.containers.list(filters={"label": [f"{self.namespace}.app={app}",
                                                                  f"{self.namespace}.type=web"]})
        if not found:
            return {}
        newest = max(found, key=lambda c: c.attrs["Created"])
        return {"web_created_s": docker_time(newest.attrs["Created"]) - wall0,
                "web_started_s": docker_time(newest.attrs["State"]["StartedAt"]) - wall0}

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
        if self.log is not None:
            self.log.close()
        if self.stop_controller:
            self.stop_controller()
        if self.router:
            self.router.stop()
        purge(self.client, self.namespace)
        for app in self.apps:  # a build container may be going away on its own meanwhile
            for c in self.client.containers.list(all=True, sparse=True, filters={"name": f"deis-build-{app}-"}):
                try:
                    c.remove(force=True)
                except docker.errors.NotFound:
                    pass
            for image in self.client.images.list(name=f"deis-apps/{app}"):
                for tag in image.tags:
                    try:
                        self.client.images.remove(tag, force=True)
                    except docker.errors.NotFound:
                        pass


def docker_time(text: str) -> float:
    """The engine's RFC 3339 time (nanoseconds, Z) as a Unix time."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"unexpected time from the engine: {text!r}")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    whole = datetime.fromisoformat(match.group(1) + zone).timestamp()
    return whole + float("0" + (match.group(2) or ".0"))


def milestones(push: dict, steps: list) -> dict[str, float]:
    """When each milestone came, in s from the start of the push."""
    found: dict[str, float] = {}
    for key, pattern, _ in steps:
        if pattern is None:
            continue
        rx = re.compile(pattern)
        hit = next((t for t, text in push["lines"] if rx.search(text)), None)
        if hit is not None:
            found[key] = hit
    found["served"], found["exit"] = push["serve_s"], push["exit_s"]
    for key in ("web_created", "web_started"):
        if f"{key}_s" in push:
            found[key] = push[f"{key}_s"]
    return found


class Watcher:
    """Samples, twice a second, the running containers that are not this run's (another user of the
    machine's Docker Engine). A container of theirs created during a measurement or up to RECENT s
    before it means they were building or deploying meanwhile; their long-running idle containers
    are not counted."""

    RECENT = 10.0

    def __init__(self, client, bench: Bench, period: float = 0.5):
        self.client, self.bench, self.period = client, bench, period
        self.samples: list[tuple[float, dict[str, int]]] = []  # (perf_counter, {name: created})
        self.offset = time.time() - time.perf_counter()  # perf_counter -> Unix time
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def foreign_now(self) -> dict[str, int]:
        mine = tuple(f"deis-build-{app}-" for app in self.bench.apps)
        found = {}
        for c in self.client.containers.list(sparse=True):
            name = (c.attrs.get("Names") or ["?"])[0].lstrip("/")
            if (c.attrs.get("Labels") or {}).get(f"{self.bench.namespace}.managed") == "1" or name.startswith(mine):
                continue
            found[name] = int(c.attrs.get("Created") or 0)
        return found

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.samples.append((time.perf_counter(), self.foreign_now()))
            except Exception:  # noqa: BLE001 (the engine was busy: next sample)
                pass
            self.stop_event.wait(self.period)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)

    def seen(self, t0: float, t1: float) -> list[str]:
        """Foreign containers running between t0 and t1 (perf_counter) created since t0 - RECENT."""
        since = t0 + self.offset - self.RECENT
        names: set[str] = set()
        for t, found in self.samples:
            if t0 <= t <= t1:
                names |= {name for name, created in found.items() if created >= since}
        return sorted(names)

    def total_foreign(self) -> int:
        """How many foreign containers ran at some point of the run."""
        every = {name for _, found in self.samples for name in found}
        return len(every)

    def wait_quiet(self, limit: float) -> float:
        """Wait (up to `limit` s) until no foreign container is younger than RECENT s; the time waited."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit and any(
                created >= time.time() - self.RECENT for created in self.foreign_now().values()):
            time.sleep(0.5)
        return time.perf_counter() - t0


# --- the apps -----------------------------------------------------------------------------------

FLASK_LINE = "    return f\"hello from flask on port {os.environ.get('PORT')}\\n\""


def flask_app_py(marker: str) -> str:
    """The Flask test app's app.py with `marker` in the line it answers."""
    text = (FLASK_DIR / "app.py").read_text()
    if FLASK_LINE not in text:
        raise RuntimeError(f"{FLASK_DIR / 'app.py'} changed: cannot find the line to edit")
    return text.replace(FLASK_LINE, FLASK_LINE.replace("{os.environ.get('PORT')}",
                                                       "{os.environ.get('PORT')} " + marker))


def flask_files(marker: str) -> dict[str, str]:
    files = {p.name: p.read_text() for p in FLASK_DIR.iterdir() if p.is_file()}
    files["app.py"] = flask_app_py(marker)
    return files


def dockerfile_files(marker: str) -> dict[str, str]:
    from tests.builder.conftest import BUILDER_DOCKERFILE, BUILDER_WEB_PROCFILE
    return {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE, "index.html": f"hello {marker}\n"}


# --- baselines ----------------------------------------------------------------------------------

PIP_SCRIPT = r"""
. /tmp/bench/env.sh
export PIP_CACHE_DIR=/tmp/bench-pip-cache PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off PYTHONUNBUFFERED=1
t0=$(date +%s.%N)
python3 -m venv --without-pip /tmp/venv || exit 1
t1=$(date +%s.%N)
python3 -m pip --python /tmp/venv/bin/python install -q -r /tmp/bench/requirements.txt || exit 1
t2=$(date +%s.%N)
echo "BENCH $t0 $t1 $t2"
"""


def pip_baseline(client, namespace: str, workdir: Path) -> dict:
    """venv + pip install -r requirements.txt in one bare run-image container, as the builder would."""
    from docker.types import Mount

    from deis.builder import BuildLimits
    from deis.builder.slug import CA_BUNDLE, build_environment
    from deis.stack import ensure_images

    run_image = ensure_images(client, progress=lambda _: None).run
    folder = workdir / "pip-baseline"
    folder.mkdir(exist_ok=True)
    (folder / "env.sh").write_text(build_environment("bench-baseline"))
    shutil.copy(FLASK_DIR / "requirements.txt", folder / "requirements.txt")
    mounts = [Mount("/tmp/bench", str(folder), type="bind", read_only=True)]
    if os.path.isfile(CA_BUNDLE):
        mounts.append(Mount(CA_BUNDLE, CA_BUNDLE, type="bind", read_only=True))
    limits = BuildLimits()
    cpus = min(float(limits.cpus), float(os.cpu_count() or 1))
    t0 = time.perf_counter()
    container = client.containers.run(
        run_image, ["-c", PIP_SCRIPT], entrypoint=["/bin/bash"], user="root", mounts=mounts, detach=True,
        mem_limit=limits.memory, memswap_limit=limits.memory, nano_cpus=int(cpus * 1e9),
        labels={f"{namespace}.managed": "1", f"{namespace}.bench": "pip"})
    try:
        status = container.wait(timeout=600)["StatusCode"]
        total = time.perf_counter() - t0
        out = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if status != 0 or line is None:
        raise RuntimeError(f"pip baseline failed ({status}):\n{out}")
    a, b, c = (float(x) for x in line.split()[1:])
    return {"total_s": total, "venv_s": b - a, "pip_s": c - b}


def bare_run(client, image: str, namespace: str) -> float:
    """One `docker run -d` of the stack image until it answers HTTP at its address."""
    t0 = time.perf_counter()
    container = client.containers.run(image, BARE_CMD, detach=True, init=True, network="bridge",
                                      labels={f"{namespace}.managed": "1", f"{namespace}.bench": "bare"})
    try:
        address = wait_until(lambda: address_of(container), 10, "bare container address")
        wait_until(lambda: requests.get(f"http://{address}:8080/", timeout=1).status_code == 200, 20,
                   "bare container to answer")
        return time.perf_counter() - t0
    finally:
        container.remove(force=True)


# --- probes of the warm push's first step ---------------------------------------------------------

def probes(bench: Bench, repo: Path, app: str, client) -> dict:
    """Cheap separate timings of parts of a warm push (median of 3 each)."""
    from deis.stack import ensure_images
    run_image = ensure_images(client, progress=lambda _: None).run
    image = max(client.images.list(name=f"deis-apps/{app}"), key=lambda i: i.attrs["Created"]).tags[0]

    def timed(fn) -> float:
        values = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            values.append(time.perf_counter() - t0)
        return statistics.median(values)

    def ls_remote():
        done = bench.user.git("ls-remote", "deis", cwd=repo)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)

    def hook_start():
        from deis.builder.repos import HOOK_CLIENT
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEIS_")}
        done = subprocess.run([sys.executable, "-I", "-S", str(HOOK_CLIENT)], input=b"", env=env,
                              capture_output=True, check=False)
        if b"Push through the Deis builder" not in done.stdout:
            raise RuntimeError(f"unexpected answer of the pre-receive hook: {done.stdout!r}")

    def container_round_trip():
        c = client.containers.create(run_image, entrypoint=["/bin/true"], command=[], user="root",
                                     labels={f"{bench.namespace}.managed": "1"})
        try:
            c.start()
            c.wait(timeout=60)
        finally:
            c.remove(force=True)

    def app_image_start():
        web = (FLASK_DIR / "Procfile").read_text().split(":", 1)[1].strip()
        c = client.containers.run(image, [web], detach=True, init=True, network="bridge",
                                  environment={"PORT": "5000"}, labels={f"{bench.namespace}.managed": "1"})
        try:
            address = wait_until(lambda: address_of(c), 10, "app container address")
            wait_until(lambda: requests.get(f"http://{address}:5000/", timeout=1).status_code == 200, 30,
                       "app container to answer")
        finally:
            c.remove(force=True)

    return {"ls_remote_s": timed(ls_remote), "hook_start_s": timed(hook_start),
            "container_s": timed(container_round_trip), "app_start_s": timed(app_image_start)}


# --- the report ---------------------------------------------------------------------------------

def machine(client) -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "deis"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": cpu,
        "mem_gib": int(mem_kb.group(1)) / 1024 / 1024 if mem_kb else 0,
        "kernel": platform.release(),
        "docker": client.version().get("Version", "?"),
        "git": git.replace("git version ", ""),
        "python": platform.python_version(),
        "commit": commit + (" (deis/ modified)" if dirty else ""),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def breakdown(pushes: list[dict], steps: list) -> list[str]:
    """Markdown rows: each milestone's median time from the push's start and the step before it."""
    marks = [milestones(p, steps) for p in pushes]
    rows, previous = [], 0.0
    ordered = [(key, why) for key, _, why in steps
               if all(key in m for m in marks)]
    ordered.sort(key=lambda kw: statistics.median(m[kw[0]] for m in marks))
    for key, why in ordered:
        at = statistics.median(m[key] for m in marks)
        rows.append(f"| {LABELS.get(key, key)} | {fmt(at, 2)} | {fmt(at - previous, 2)} | {why} |")
        previous = at
    return rows


LABELS = {"detected": "`-----> Python app detected`", "python": "`-----> Using Python ...`",
          "venv": "`-----> Using cached virtualenv` (cold: `Creating a virtualenv`)",
          "install": "`-----> Installing requirements with pip`",
          "procfile": "`-----> Procfile declares types`", "compiled": "`-----> Compiled slug size ...`",
          "served": "new text served via router", "web_created": "new web container created",
          "web_started": "new web container started", "launched": "`-----> Launching... done`",
          "exit": "`git push` exits", "building": "`-----> Building Docker image`",
          "built": "`Successfully tagged ...`"}


KINDS = {"pip": "pip baselines", "cold": "cold pushes", "warm": "warm pushes", "bare": "bare docker runs",
         "docker_first": "Dockerfile first pushes", "docker_second": "Dockerfile second pushes"}


def shared_line(res: dict, args) -> str:
    """Whether the measurements had the machine to themselves (others building or deploying)."""
    shared = res.get("shared") or {}
    total = sum(len(v) for v in shared.values())
    busy = {k: sum(1 for names in v if names) for k, v in shared.items()}
    names = sorted({n for v in shared.values() for names in v for n in names})
    waited = (f" Before each measurement the run waited (at most {args.quiet_wait:g} s) until no other container "
              f"was younger than {Watcher.RECENT:g} s: {res.get('quiet_waited_s', 0):.0f} s in all."
              if args.quiet_wait > 0 else "")
    count = res.get("foreign_total", 0)
    idle = (f" ({count} containers of others ran at some point, the rest idle)" if count
            else " (no container of others ran at all)")
    if not names:
        return (f"- Other users of the Docker Engine: none created a container during (or {Watcher.RECENT:g} s "
                f"before) any of the {total} measurements{idle}.{waited}")
    per = ", ".join(f"{busy[k]} of {len(shared[k])} {KINDS.get(k, k)}" for k in shared if busy[k])
    shown = ", ".join(f"`{n}`" for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"- **The machine was shared**: another user of the Docker Engine (the test suite) created containers "
            f"during (or {Watcher.RECENT:g} s before) {sum(busy.values())} of {total} measurements ({per}): "
            f"{shown}{idle}. Their CPU and disk use is in these figures.{waited}")


def report(m: dict, res: dict, args) -> str:
    from deis.builder import BuildLimits
    limits = BuildLimits()
    med = statistics.median
    cold, warm, base = res["cold"], res["warm"], res["pip"]
    d1, d2, bare = res["docker_first"], res["docker_second"], res["bare"]
    # The baseline: pip install in a bare container plus one bare `docker run` until HTTP.
    cold_med, base_med = med(p["serve_s"] for p in cold), med(b["total_s"] for b in base) + med(bare)
    pip_only = med(b["pip_s"] for b in base)
    venv_only = med(b["venv_s"] for b in base)
    warm_med = med(p["serve_s"] for p in warm)
    d1_med, d2_med, bare_med = med(p["serve_s"] for p in d1), med(p["serve_s"] for p in d2), med(bare)
    cold_ratio = cold_med / base_med
    warm_launch = med(milestones(p, FLASK_STEPS + LAUNCH_STEPS).get("launched", float("nan")) for p in warm)
    ms = lambda s: fmt(s * 1000, 0)  # noqa: E731
    runs = lambda xs: ", ".join(ms(x) for x in xs)  # noqa: E731
    pr = res.get("probes") or {}

    lines = [
        f"_Generated by `bench/deploy.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        "`--write` replaces this section._",
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']:.1f} GiB RAM, kernel {m['kernel']}; "
        f"load average when the run began: {m['load']}, when it ended: {m.get('load_end', '?')} "
        f"(the run took {m.get('duration_s', 0):.0f} s)",
        shared_line(res, args),
        f"- Software: Docker Engine {m['docker']}, git {m['git']}, Python {m['python']}; code: commit {m['commit']}",
        "- Platform: as tests/builder/conftest.py runs it: `deis.router.Router` (HAProxy) on free ports, a "
        "controller from `tests.conftest.start_live_controller` (gunicorn, SQLite) with DEIS_SCHEDULER=docker in "
        f"a namespace of its own (DEIS_SETTLE={args.settle:g}, DEIS_STOP_GRACE={args.grace:g}), the builder's SSH "
        "server (`python -m deis.builder serve`) on a free port; one user with an ed25519 key pushes with git "
        f"over SSH. Builds use the builder's limits (DEIS_BUILD_CPUS={limits.cpus:g}, "
        f"DEIS_BUILD_MEMORY={limits.memory}).",
        f"- A push is timed from the start of `git push deis master` until `GET` through the router (Host header, "
        f"polled every {POLL * 1000:g} ms from the start of the push) answers a text unique to that push. The "
        "builder's `remote:` lines are timestamped as they arrive, which splits a push into steps.",
        f"- Cold push: the Flask test app (tests/builder/apps/flask: Flask 3.0.3 + gunicorn 23.0.0, 2 workers) on "
        f"a new app each time (empty build cache: no cached virtualenv, no pip cache); {len(cold)} repetitions. "
        "Baseline, interleaved: one bare `docker run` of the run image (deis/run:bookworm-1) as root doing "
        "`python3 -m venv --without-pip` then the stack's `pip --python <venv> install -r requirements.txt` (the "
        "stack's python is externally managed: pip needs a virtualenv; this is the fastest way, and the buildpack's "
        "own) with the builder's environment "
        "(`deis.builder.slug.build_environment`: CA bundle variables, the host's PIP_* settings), the CA bundle "
        "mounted as the builder mounts it, the builder's CPU/memory limits and an empty pip cache; timed from the "
        "call until the container exited (packages are downloaded from the index each time, as in a cold build); "
        "plus the median of one bare `docker run -d` until HTTP (the Dockerfile baseline below).",
        f"- Warm push: one line of app.py changed (same requirements) on the app of the last cold push; "
        f"{len(warm)} repetitions.",
        f"- Dockerfile push: tests/builder/conftest.py's BUILDER_DOCKERFILE (FROM deis/stack:bookworm-1, "
        f"`COPY . /srv`, python3 -m http.server), a new app each time, first push and a second one changing one "
        f"line of index.html; {len(d1)} repetitions. Baseline, interleaved: one bare container of the stack image "
        "(Docker SDK `containers.run(detach=True)` = `docker run -d`, bridge network, `--init`, `python3 -m "
        "http.server 8080`) from the call until `GET /` at its address answers 200.",
        "- Medians throughout.",
        "",
        "| measurement | platform | baseline | ratio | goal | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| cold push (Flask, new app) -> served via router (s) | {fmt(cold_med, 2)} | {fmt(base_med, 2)} "
        f"(bare `docker run` of venv + `pip install -r requirements.txt`, plus a bare `docker run -d` until HTTP) | "
        f"{fmt(cold_ratio, 2)}x | "
        f"<= {GOAL_COLD_RATIO:g}x baseline | {met(cold_ratio <= GOAL_COLD_RATIO)} "
        f"({sum(p['serve_s'] > GOAL_COLD_RATIO * base_med for p in cold)} of {len(cold)} runs over) |",
        f"| warm push (Flask, one line changed) -> served via router (s) | {fmt(warm_med, 2)} | - | - | "
        f"< {GOAL_WARM_S:g} s (peer PaaS without containers: {PEER_WARM_S:g} s) | {met(warm_med < GOAL_WARM_S)} "
        f"({sum(p['serve_s'] >= GOAL_WARM_S for p in warm)} of {len(warm)} runs >= {GOAL_WARM_S:g} s) |",
        f"| Dockerfile app, first push -> served via router (s) | {fmt(d1_med, 2)} | {fmt(bare_med, 2)} "
        f"(one bare `docker run -d` until HTTP) | {fmt(d1_med / bare_med, 1)}x | - | - |",
        f"| Dockerfile app, second push (one line changed) -> served (s) | {fmt(d2_med, 2)} | {fmt(bare_med, 2)} "
        f"(same) | {fmt(d2_med / bare_med, 1)}x | - | - |",
        "",
        "All runs:",
        "",
        "| measurement | runs (ms) | median (ms) |",
        "| --- | --- | ---: |",
        f"| baseline part 1: bare `docker run`, venv + pip install, until exit | {runs([b['total_s'] for b in base])} | "
        f"{ms(med(b['total_s'] for b in base))} |",
        f"| ... of which `python3 -m venv --without-pip` | {runs([b['venv_s'] for b in base])} | {ms(venv_only)} |",
        f"| ... of which `pip install -r requirements.txt` | {runs([b['pip_s'] for b in base])} | {ms(pip_only)} |",
        f"| cold push -> served | {runs([p['serve_s'] for p in cold])} | {ms(cold_med)} |",
        f"| cold push -> `git push` exits | {runs([p['exit_s'] for p in cold])} | "
        f"{ms(med(p['exit_s'] for p in cold))} |",
        f"| warm push -> served | {runs([p['serve_s'] for p in warm])} | {ms(warm_med)} |",
        f"| warm push -> `Launching... done` | "
        f"{runs([milestones(p, FLASK_STEPS + LAUNCH_STEPS).get('launched', float('nan')) for p in warm])} | "
        f"{ms(warm_launch)} |",
        f"| warm push -> `git push` exits | {runs([p['exit_s'] for p in warm])} | "
        f"{ms(med(p['exit_s'] for p in warm))} |",
        f"| bare `docker run -d` of the stack image until HTTP | {runs(bare)} | {ms(bare_med)} |",
        f"| Dockerfile first push -> served | {runs([p['serve_s'] for p in d1])} | {ms(d1_med)} |",
        f"| Dockerfile second push -> served | {runs([p['serve_s'] for p in d2])} | {ms(d2_med)} |",
        "",
        "Where the time of a push goes: each milestone's median time from the start of `git push` (the builder's "
        "lines as they reached the pusher; *served* from the router poll) and the median step before it:",
        "",
        "| warm push (Flask) milestone | at (s) | step (s) | what the step does |",
        "| --- | ---: | ---: | --- |",
        *breakdown(warm, FLASK_STEPS + LAUNCH_STEPS),
        "",
        "| cold push (Flask) milestone | at (s) | step (s) | what the step does |",
        "| --- | ---: | ---: | --- |",
        *breakdown(cold, FLASK_STEPS + LAUNCH_STEPS),
        "",
        "| Dockerfile second push milestone | at (s) | step (s) | what the step does |",
        "| --- | ---: | ---: | --- |",
        *breakdown(d2, DOCKER_STEPS + LAUNCH_STEPS),
        "",
    ]
    if pr:
        lines += [
            "Separate probes of parts of a warm push (median of 3 each, measured after the warm pushes): "
            f"`git ls-remote deis` (SSH connection, key check and access hooks, ref advertisement) "
            f"{ms(pr['ls_remote_s'])} ms; the pre-receive hook's own run (`python -I -S "
            f"deis/builder/prereceive.py`, without a session to hand over) {ms(pr['hook_start_s'])} ms; "
            f"create + start + wait + remove of a run-image container running `/bin/true` (Docker SDK) "
            f"{ms(pr['container_s'])} ms; a bare `docker run -d` of the app's last built image with its "
            f"Procfile's web command (gunicorn, 2 workers) until `GET /` answers 200 at its address "
            f"{ms(pr['app_start_s'])} ms (compare with the launch step).",
            "",
        ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = platform_parser(__doc__.splitlines()[0], SECTION)
    parser.add_argument("--cold", type=int, default=5, help="cold pushes (each on a new app; default 5)")
    parser.add_argument("--warm", type=int, default=5, help="warm pushes (default 5)")
    parser.add_argument("--dockerfile", type=int, default=3, help="Dockerfile apps, two pushes each (default 3)")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="before each measurement, wait up to this many s until no other container runs "
                             "on the Docker Engine (default 0: do not wait; they are reported either way)")
    args = parser.parse_args(argv)
    if min(args.cold, args.warm, args.dockerfile) < 1:
        parser.error("each measurement needs at least one repetition")

    workdir = Path(tempfile.mkdtemp(prefix="deis-bench-deploy-"))
    os.environ["DEIS_DATA_DIR"] = str(workdir / "data")  # before tests.conftest / Django settings load
    client = docker.from_env()
    from deis.stack import ensure_images
    images = ensure_images(client)
    m = machine(client)
    bench = Bench(workdir, client, args)
    watcher = Watcher(client, bench)
    res: dict = {"pip": [], "cold": [], "warm": [], "bare": [], "docker_first": [], "docker_second": [],
                 "shared": {}, "quiet_waited_s": 0.0}
    started = time.perf_counter()

    def measure(kind: str, fn, *fn_args):
        """Run one measurement, noting the other containers that ran meanwhile."""
        if args.quiet_wait > 0:
            res["quiet_waited_s"] += watcher.wait_quiet(args.quiet_wait)
        t0 = time.perf_counter()
        result = fn(*fn_args)
        res[kind].append(result)
        res["shared"].setdefault(kind, []).append(watcher.seen(t0, time.perf_counter()))
        return result

    try:
        say(f"platform: starting (data dir {workdir})")
        bench.start()
        watcher.start()
        bare_run(client, images.stack, bench.namespace)  # warm-up: first container start of the stack image

        say(f"1. cold push (Flask, new app each time) vs bare venv + pip install ({args.cold} repetitions)")
        app = repo = None
        for _ in range(args.cold):
            b = measure("pip", pip_baseline, client, bench.namespace, workdir)
            say(f"   baseline {b['total_s']:.2f} s (venv {b['venv_s']:.2f} s, pip install {b['pip_s']:.2f} s)")
            if app is not None:
                bench.delete_app(app)  # one idle app running at a time
            app = bench.new_app("cold")
            marker = f"cold-{uuid.uuid4().hex[:10]}"
            repo = bench.repo(app, flask_files(marker))
            p = measure("cold", bench.push, repo, app, "/", marker)
            say(f"   cold push {app}: served {p['serve_s']:.2f} s, git push exited {p['exit_s']:.2f} s")

        say(f"2. warm push (one line of app.py changed) on {app} ({args.warm} repetitions)")
        for _ in range(args.warm):
            marker = f"warm-{uuid.uuid4().hex[:10]}"
            bench.commit(repo, {"app.py": flask_app_py(marker)})
            p = measure("warm", bench.push, repo, app, "/", marker)
            mk = milestones(p, FLASK_STEPS + LAUNCH_STEPS)
            say(f"   warm push: served {p['serve_s']:.2f} s, Launching... {mk.get('launched', float('nan')):.2f} s, "
                f"git push exited {p['exit_s']:.2f} s")
        res["probes"] = probes(bench, repo, app, client)
        say("   probes: " + ", ".join(f"{k} {v:.3f} s" for k, v in res["probes"].items()))
        bench.delete_app(app)

        say(f"3. Dockerfile app: first and second push vs bare docker run -d ({args.dockerfile} repetitions)")
        for _ in range(args.dockerfile):
            bare = measure("bare", bare_run, client, images.stack, bench.namespace)
            app = bench.new_app("dock")
            marker = f"dock-{uuid.uuid4().hex[:10]}"
            repo = bench.repo(app, dockerfile_files(marker))
            first = measure("docker_first", bench.push, repo, app, "/index.html", marker)
            marker = f"dock2-{uuid.uuid4().hex[:10]}"
            bench.commit(repo, {"index.html": f"hello {marker}\n"})
            second = measure("docker_second", bench.push, repo, app, "/index.html", marker)
            bench.delete_app(app)
            say(f"   bare docker run -d {bare:.2f} s; first push {first['serve_s']:.2f} s, "
                f"second push {second['serve_s']:.2f} s")
    finally:
        watcher.stop()
        res["foreign_total"] = watcher.total_foreign()
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    m["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    m["duration_s"] = time.perf_counter() - started
    say(f"done in {m['duration_s']:.0f} s")

    body = report(m, res, args)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "results": res}, indent=2))
    if args.write:
        write_section(SECTION, body)
        say(f"wrote section '{SECTION[3:]}' of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
