"""The router: one nginx master of the platform's own, configured from the routes of the apps.

Layout under `<data_dir>/router/` (nginx's prefix):

    nginx.conf          symlink to the live generation's nginx.conf (what `-c` names)
    generations/N/      one full configuration: nginx.conf, apps/<app>.conf, certs/<app>/<i>.{crt,key}
    state.json          the live generation number and each app's last good route (mode 0600)
    nginx.pid, logs/, tmp/, lock

nginx runs in one of two ways, with the same prefix, config and pid file (reloads are the same
SIGHUP to the pid file's master either way): detached (`start()`, nginx's own daemon mode: tests and
tools that run a router by themselves), or supervised (`run()`: the process becomes nginx in the
foreground, `-g 'daemon off;'`, so that its supervisor - `deis-platform up`'s supervisord - sees it
die and starts it again). A Router made with `supervised=True` (DEIS_ROUTER_SUPERVISED=1, which
`deis-platform up` gives its programs) never starts a detached nginx: `start()` waits for the
supervised one instead, so that the deployer and supervisord never start two.

`apply()` renders a new generation, checks it with `nginx -t`, leaves out (or keeps at their last
good route) the apps that make it fail, points the symlink at it in one rename and reloads nginx
gracefully (SIGHUP: new workers take new connections, old ones finish what they have). It then
waits until a fresh connection is answered by the new generation and no old worker accepts any
more, so that callers can rely on the routes, and stop what the old ones routed to, as soon as it
returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from .model import InvalidRoute, Route, certificate_problems, validate
from .templates import app_template, main_template

STATUS_HOST = "router.deis.invalid"
KEEP_GENERATIONS = 3
DRAIN_WAIT = 1.0  # seconds an apply waits at most for the old workers to finish their requests
_SAFE_PATH = re.compile(r"^[^\"'\\$;{}\s#]+$")


class RouterError(RuntimeError):
    """The router cannot do what it was asked (nginx missing, port taken, base config refused...)."""


@dataclass
class ApplyResult:
    generation: int = 0
    applied: list[str] = field(default_factory=list)  # apps live with the route given now
    rejected: dict[str, str] = field(default_factory=dict)  # app -> why (nginx's message, or ours)
    kept: list[str] = field(default_factory=list)  # rejected apps still served by their last good route
    dropped: list[str] = field(default_factory=list)  # rejected apps with no last good route: not served
    warnings: list[str] = field(default_factory=list)
    reloaded: bool = False  # a running nginx took the new generation (False when nginx is not running)
    unconfirmed: bool = False  # nginx runs but did not confirm the new generation in time

    @property
    def ok(self) -> bool:
        return not self.rejected


def process_title(pid: int) -> str | None:
    """A live process's command line as `ps` shows it (nginx rewrites its own); None when gone."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return None if status.split(") ", 1)[-1][:1] in ("Z", "X") else title


def worker_state(pid: int) -> str | None:
    """"accepting", "draining" (told to shut down: takes no new connection, finishes its
    requests) or None (gone) for an nginx worker. nginx renames the process to "... is shutting
    down" right before it closes its listening sockets, with no accept in between."""
    title = process_title(pid)
    if title is None or "nginx: worker process" not in title:
        return None  # exited (or its pid now belongs to another process)
    return "draining" if "is shutting down" in title else "accepting"


def accepting_workers(master: int) -> list[int]:
    """The pids of the master's workers that take new connections."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: look for processes whose parent it is
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError):
                if stat.read_text().split(") ", 1)[1].split()[1] == str(master):
                    children.append(stat.parent.name)
    return [int(pid) for pid in children if worker_state(int(pid)) == "accepting"]


def nginx_orphans(master: int) -> list[int]:
    """The live processes a dead nginx master left: its workers (and cache processes) keep serving
    with the old configuration and hold the listening sockets, so no new master could bind the
    ports. Each master leads a process group of its own (nginx's daemon mode calls setsid,
    supervisord puts each program in a group of its own), which its workers stay in."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)[1].split()  # state, ppid, pgrp, ...
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if pid != master and fields[2] == str(master) and fields[0] not in ("Z", "X"):
            title = process_title(pid)
            if title is not None and title.startswith("nginx:"):
                found.append(pid)
    return found


def find_nginx(install: bool = False) -> str:
    """Path of the nginx binary; with install=True, scripts/nginx.sh installs it when missing."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    script = Path(__file__).resolve().parents[2] / "scripts" / "nginx.sh"
    if install and script.exists():
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        raise RouterError(f"installing nginx failed: {proc.stderr.strip()[-2000:]}")
    raise RouterError("nginx is not installed (run scripts/nginx.sh as root, or apt-get install -y nginx)")


# Per process, by root: the parsed state file and rendered app files (see _load_state, _render).
_STATES: dict[str, tuple] = {}
_RENDERED: dict[str, dict[str, tuple]] = {}


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `path` whole or not at all (a file of a killed writer is never half there)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "[emerg]" in ln or "[crit]" in ln or "[alert]" in ln]
    chosen = errors or [ln for ln in lines if "test failed" not in ln] or lines
    return "; ".join(chosen[:3])[:2000]


class Router:
    def __init__(self, data_dir: Path | str, http_port: int = 80, https_port: int | None = 443, *,
                 listen_address: str = "", connect_timeout: int = 30, read_timeout: int = 1300,
                 send_timeout: int | None = None, max_body_size: str = "1m", buffering: bool = False,
                 worker_processes: str | int = "auto", worker_connections: int = 4096,
                 worker_shutdown_timeout: int | None = None, access_log: bool = True,
                 error_log_level: str = "warn", nginx: str | None = None, install: bool = True,
                 reload_timeout: float = 10.0, supervised: bool | None = None):
        self.root = Path(data_dir).resolve() / "router"
        if not _SAFE_PATH.match(str(self.root)):
            raise RouterError(f"the router's directory {self.root} has characters nginx paths cannot hold")
        if not re.match(r"^\d+[kKmMgG]?$", str(max_body_size)):
            raise RouterError(f"invalid max_body_size {max_body_size!r} (like 1m, 512k, 0 for no limit)")
        if listen_address and not re.match(r"^[0-9.]+$|^\[[0-9a-fA-F:]+\]$", listen_address):
            raise RouterError(f"invalid listen_address {listen_address!r} (an IPv4 address or [IPv6])")
        self.http_port = int(http_port)
        self.https_port = int(https_port) if https_port else None
        self.listen_address = listen_address
        self.settings = {
            "connect_timeout": int(connect_timeout), "read_timeout": int(read_timeout),
            "send_timeout": int(send_timeout if send_timeout is not None else read_timeout),
            "max_body_size": str(max_body_size), "buffering": bool(buffering),
            "worker_processes": str(worker_processes), "worker_connections": int(worker_connections),
            "worker_shutdown_timeout": int(worker_shutdown_timeout) if worker_shutdown_timeout else None,
            "access_log": bool(access_log), "error_log_level": str(error_log_level)}
        self._nginx = nginx
        self._install = install
        self.reload_timeout = reload_timeout
        # app -> (what it was rendered from, the text), shared by the Routers of this root: see _render
        self._rendered: dict[str, tuple] = _RENDERED.setdefault(str(self.root.resolve()), {})
        # A supervisor runs nginx (`run()`); start() only waits for it. Default: DEIS_ROUTER_SUPERVISED.
        self.supervised = (os.environ.get("DEIS_ROUTER_SUPERVISED") == "1") if supervised is None else supervised

    # ----------------------------------------------------------------- paths and small helpers
    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.root / "logs" / "error.log"

    @property
    def nginx(self) -> str:
        if not self._nginx:
            self._nginx = find_nginx(install=self._install)
        return self._nginx

    def _listen(self, port: int) -> str:
        return f"{self.listen_address}:{port}" if self.listen_address else str(port)

    def _probe_address(self) -> str:
        if self.listen_address and self.listen_address not in ("0.0.0.0",):
            return self.listen_address.strip("[]")
        return "127.0.0.1"

    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _dirs(self) -> None:
        for d in ("generations", "logs", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def _load_state(self) -> dict:
        """The last good routes and their generation; parsed once per change of the file (every
        Router of a process shares the parse: the deployer makes one per app it converges)."""
        path = self.root / "state.json"
        try:
            info = path.stat()
            key = (info.st_ino, info.st_mtime_ns, info.st_size)
            cached = _STATES.get(str(path))
            if cached is not None and cached[0] == key:
                return {"generation": cached[1], "routes": dict(cached[2])}
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"generation": 0, "routes": {}}
        generation = int(data.get("generation", 0))
        routes = {app: Route.from_dict(r) for app, r in data.get("routes", {}).items()}
        _STATES[str(path)] = (key, generation, routes)
        return {"generation": generation, "routes": dict(routes)}

    def _save_state(self, generation: int, routes: dict[str, Route]) -> None:
        path = self.root / "state.json"
        tmp = path.with_suffix(".tmp")
        text = json.dumps({"generation": generation,
                           "routes": {app: r.to_dict() for app, r in sorted(routes.items())}}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    # ----------------------------------------------------------------- process
    def master_pid(self) -> int | None:
        """The pid of this router's nginx master, when one is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        title = process_title(pid)
        return pid if title is not None and "nginx" in title and str(self.conf) in title else None

    def running(self) -> bool:
        return self.master_pid() is not None

    def argv(self, foreground: bool = False) -> list[str]:
        """nginx's command line: detached (nginx's default, daemon mode), or in the foreground for
        a supervisor (`-g 'daemon off;'`; the rendered config leaves `daemon` to the command line)."""
        return [self.nginx, "-p", f"{self.root}/", "-c", str(self.conf), *(["-g", "daemon off;"] if foreground else [])]

    def start(self) -> ApplyResult | None:
        """Start this router's nginx (detached) with the last good routes; nothing when it runs
        already. A supervised Router starts nothing: it waits for the supervisor's nginx."""
        if self.supervised:
            return self._await_supervised()
        with self._locked():
            if self.running():
                return None
            self._dirs()
            self._clear_orphans()
            state = self._load_state()
            result = self._build(list(state["routes"].values()), state)
            proc = subprocess.run(self.argv(), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RouterError(f"nginx did not start: {_first_error(proc.stderr)}")
            deadline = time.monotonic() + 5
            while not self.running():
                if time.monotonic() > deadline:
                    raise RouterError(f"nginx did not start: {self._error_log_tail()}")
                time.sleep(0.02)
            result.reloaded = self._wait_for_generation(result.generation)
            return result

    def _await_supervised(self) -> None:
        """Wait (up to reload_timeout) for the supervisor's nginx: one starting holds the lock
        until it serves its generation (see run())."""
        with self._locked():
            pass
        deadline = time.monotonic() + self.reload_timeout
        while not self.running():
            if time.monotonic() > deadline:
                raise RouterError("nginx is not running; its supervisor starts it again "
                                  f"(see its log, and {self.error_log})")
            time.sleep(0.05)
        return None

    def run(self) -> NoReturn:
        """Become this router's nginx in the foreground, for a supervisor that restarts it when it
        dies (`deis-platform up`'s supervisord): under the lock, stop a master that runs (a detached
        one, or one a killed supervisord left), get rid of what a killed master left, write the
        configuration from the last good routes, then exec nginx, so that this process - the one
        the supervisor watches - is the master. A forked helper keeps the lock until the new master
        serves its generation: an apply meanwhile would find no master to reload, or one not yet
        ready for the signal. Returns only by raising RouterError."""
        self.root.mkdir(parents=True, exist_ok=True)
        argv = self.argv(foreground=True)  # finds nginx before anything changes
        lock = open(self.root / "lock", "a")  # noqa: SIM115 - the helper below holds it past the exec
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            self._dirs()
            if (pid := self.master_pid()) is not None:
                self._stop_locked(pid, timeout=self.reload_timeout)
            self._clear_orphans()
            state = self._load_state()
            generation = self._build(list(state["routes"].values()), state).generation
        except BaseException:
            lock.close()
            raise
        me = os.getpid()
        child = os.fork()
        if child == 0:  # the helper, detached from this process (a grandchild: nginx never reaps it)
            try:
                if os.fork() == 0:
                    with contextlib.suppress(BaseException):
                        self._hold_until_serving(me, generation)
            finally:
                os._exit(0)  # the lock goes with the helper's descriptor
        os.waitpid(child, 0)
        lock.close()  # the helper's copy keeps the lock (flock belongs to the open file, not the fd)
        os.execv(argv[0], argv)

    def _hold_until_serving(self, master: int, generation: int) -> None:
        deadline = time.monotonic() + self.reload_timeout
        while self.master_pid() != master:  # nginx writes its pid file once its signal handlers are set
            if process_title(master) is None or time.monotonic() > deadline:
                return  # nginx did not start (its supervisor reports it)
            time.sleep(0.02)
        self._wait_for_generation(generation)

    def _clear_orphans(self) -> None:
        """With no master alive, stop what the last one left (it was SIGKILLed): SIGQUIT, so they
        close their listening sockets at once and finish their requests for up to DRAIN_WAIT,
        then SIGKILL. Under the lock."""
        try:
            old = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if self.master_pid() is not None:
            return
        orphans = nginx_orphans(old)
        for sig, wait in ((signal.SIGQUIT, DRAIN_WAIT), (signal.SIGKILL, 3.0)):
            for pid in orphans:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and (orphans := [pid for pid in orphans if process_title(pid)]):
                time.sleep(0.02)
            if not orphans:
                return

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx: gracefully (SIGQUIT) for up to `timeout` seconds, then at once. (A
        supervised nginx is its supervisor's to stop: this one would be started again.)"""
        with self._locked():
            pid = self.master_pid()
            if pid is not None:
                self._stop_locked(pid, timeout)

    def _stop_locked(self, pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.master_pid() is None:
                    with contextlib.suppress(OSError):
                        self.pid_file.unlink()
                    return
                time.sleep(0.02)
        raise RouterError(f"nginx master {pid} did not stop")

    # ----------------------------------------------------------------- configuration
    def apply(self, routes: list[Route]) -> ApplyResult:
        """Make `routes` the router's configuration, app by app as far as nginx accepts them."""
        with self._locked():
            return self._apply_locked(routes, self._load_state())

    def _apply_locked(self, routes: list[Route], state: dict) -> ApplyResult:
        self._dirs()
        result = self._build(routes, state)
        pid = self.master_pid()
        if pid is not None:
            old_workers = accepting_workers(pid)
            os.kill(pid, signal.SIGHUP)
            result.reloaded = (self._wait_for_generation(result.generation)
                               and self._wait_for_old_workers(old_workers))
            if not result.reloaded:
                result.unconfirmed = True
                result.warnings.append(f"nginx did not take generation {result.generation}: "
                                       f"{self._error_log_tail()}")
        return result

    def routes(self) -> dict[str, Route]:
        """The routes nginx serves now (the last good one of each app)."""
        with self._locked():
            return self._load_state()["routes"]

    def update(self, changes: dict[str, Route | None], only_if_changed: bool = False,
               keep_upstreams: bool = False, remove_others: bool = False) -> ApplyResult | None:
        """Change some apps' routes (None removes one) and keep every other app's as it is, read
        and written under the router's lock, so callers that each own some apps never undo each
        other's changes. `keep_upstreams`: the changed apps keep the upstreams nginx has for them
        (for changes of hosts and certificates, which must not race a deploy's switch).
        `remove_others`: apps not in `changes` go. `only_if_changed`: nothing happens when nginx
        serves the result already (the deployer's case)."""
        with self._locked():
            state = self._load_state()
            current = {} if remove_others else dict(state["routes"])
            for app, route in changes.items():
                if route is None:
                    current.pop(app, None)
                    continue
                if keep_upstreams:
                    served = state["routes"].get(app)
                    route = replace(route, upstreams=list(served.upstreams) if served else [],
                                    backups=list(served.backups) if served else [])
                current[app] = route
            # Unchanged, and nginx serves the generation that has it: a reload that never reached
            # nginx (no master at that moment, a master replaced meanwhile) must not make every
            # later identical update a no-op.
            if only_if_changed and self.running() and self.live_generation() == state["generation"]:
                # Every other app is the state's as it is: comparing the changed ones is enough.
                try:
                    if all((validate(current[app]) if app in current else None) == state["routes"].get(app)
                           for app in changes) and (not remove_others or current.keys() == state["routes"].keys()):
                        return None
                except InvalidRoute:
                    pass  # _build reports it
            return self._apply_locked(list(current.values()), state)

    def _build(self, routes: list[Route], state: dict) -> ApplyResult:
        """Render, test and swap in a new generation; returns what happened to each app."""
        last_good: dict[str, Route] = state["routes"]
        generation = state["generation"] + 1
        result = ApplyResult(generation=generation)
        current: dict[str, Route] = {}
        fell_back: set[str] = set()

        def reject(app: str, why: str) -> None:
            result.rejected[app] = why
            previous = last_good.get(app)
            if app not in fell_back and previous is not None and previous != current.get(app):
                current[app] = previous
                fell_back.add(app)
            else:
                current.pop(app, None)

        for route in routes:
            try:
                checked = validate(route)
            except InvalidRoute as exc:
                app = getattr(route, "app", "?")
                if isinstance(app, str) and app in current:
                    result.warnings.append(f"{app}: a second route for the app was ignored")
                    continue
                result.rejected[str(app)] = str(exc)
                if isinstance(app, str) and app in last_good:
                    current[app] = last_good[app]
                    fell_back.add(app)
                continue
            if checked.app in current:
                result.warnings.append(f"{checked.app}: a second route for the app was ignored")
                continue
            result.warnings += certificate_problems(route)
            current[checked.app] = checked

        for _ in range(2 * len(current) + sum(len(r.certificates) for r in current.values()) + 2):
            gen_dir = self.root / "generations" / str(generation)
            shutil.rmtree(gen_dir, ignore_errors=True)
            warnings = self._render(gen_dir, generation, current, partial=True)
            ok, err = self._test(gen_dir)
            if ok:
                break
            # A certificate nginx refuses although it passed our checks: the app goes on without
            # it (a certificate never keeps an app's route, or its deploy, from going live).
            bad_cert = self._certificate_from_message(err, gen_dir, current)
            if bad_cert:
                app, index = bad_cert
                route = current[app]
                result.warnings.append(f"{app}: certificate {route.certificates[index].common_name!r} is not "
                                       f"served: {err.replace(str(gen_dir), '<config>')}")
                current[app] = replace(route, certificates=[c for i, c in enumerate(route.certificates)
                                                            if i != index])
                shutil.rmtree(gen_dir, ignore_errors=True)
                continue
            culprits = self._culprits_from_message(err, gen_dir, current)
            if not culprits:
                found = self._bisect(sorted(current), current, generation)
                culprits = [found] if found else []
            shutil.rmtree(gen_dir, ignore_errors=True)
            if not culprits:
                raise RouterError(f"nginx refuses the router's configuration even without apps: {err}")
            for app, why in culprits:
                reject(app, why)
        else:
            raise RouterError("could not find a configuration nginx accepts")

        result.warnings += warnings
        for app in sorted(result.rejected):
            (result.kept if app in current else result.dropped).append(app)
        result.applied = sorted(a for a in current if a not in result.rejected)

        link = self.root / "nginx.conf.new"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(gen_dir / "nginx.conf")
        os.replace(link, self.conf)  # the swap: one rename
        self._save_state(generation, current)
        self._prune(generation)
        return result

    def _render(self, gen_dir: Path, generation: int, routes: dict[str, Route], partial: bool = False) -> list[str]:
        """Write a whole configuration for `routes`: gen_dir/nginx.conf including one file per app.

        App files and certificates are content-addressed and shared by generations
        (`apps/<app>.<hash>.conf`, `certs/<app>.<i>.<hash>/`): a change of one app writes one
        file, whatever the number of apps, and a generation's own directory holds its nginx.conf
        and the list of what it uses (for _prune). Returns warnings."""
        warnings = []
        gen_dir.mkdir(parents=True)
        apps_dir, certs_root = self.root / "apps", self.root / "certs"
        apps_dir.mkdir(exist_ok=True)
        certs_root.mkdir(mode=0o700, exist_ok=True)
        http_listen = self._listen(self.http_port)
        https_listen = self._listen(self.https_port) if self.https_port else None
        claimed: dict[str, str] = {}
        app_files: list[Path] = []
        used: list[str] = []
        for app in sorted(routes):
            route = routes[app]
            hosts = []
            for host in route.hosts:
                if host in claimed or host == STATUS_HOST:
                    warnings.append(f"{app}: host {host} is already served by {claimed.get(host, 'the router')}")
                    continue
                claimed[host] = app
                hosts.append(host)
            if not hosts:
                warnings.append(f"{app}: no host name left to serve")
                continue
            tls, covered = [], set()
            if https_listen:
                for i, cert in enumerate(route.certificates):
                    names = [h for h in hosts if h not in covered and cert.covers(h)]
                    if not names:
                        continue
                    covered.update(names)
                    cert_dir = self._certificate_files(certs_root, app, i, cert)
                    used.append(f"certs/{cert_dir.name}")
                    tls.append({"hosts": names, "cert_path": cert_dir / "cert.crt", "key_path": cert_dir / "cert.key"})
            shown = Route(app=app, hosts=hosts, upstreams=route.upstreams, certificates=route.certificates,
                          backups=route.backups)
            key = (shown, [(t["hosts"], str(t["cert_path"])) for t in tls], http_listen, https_listen)
            cached = self._rendered.get(app)
            if cached is not None and cached[0] == key:
                text = cached[1]
            else:
                text = app_template.render(r=shown, tls=tls, http_listen=http_listen, https_listen=https_listen)
                self._rendered[app] = (key, text)
            path = apps_dir / f"{app}.{hashlib.sha256(text.encode()).hexdigest()[:12]}.conf"
            if not path.exists():
                _write_atomically(path, text)
            app_files.append(path)
            used.append(f"apps/{path.name}")
        def main(files: list[Path]) -> str:
            return main_template.render(
                generation=generation, prefix=self.root, dir=gen_dir, app_files=files, s=self.settings,
                http_listen=http_listen, https_listen=https_listen, status_host=STATUS_HOST,
                probe_address=self._probe_address())
        # Whether nginx detaches is its command line's (argv): nginx refuses `daemon` given both
        # there (-g 'daemon off;' under a supervisor) and in the file; its default is daemon mode.
        (gen_dir / "uses").write_text("\n".join(used) + "\n")
        (gen_dir / "nginx.conf").write_text(main(app_files))
        if partial:
            # What `nginx -t` must check: the main file and the app files the live generation does
            # not use (nginx accepted those): at 500 apps a change of one tests one app, not 500.
            try:
                live = set((self.root / "generations" / str(generation - 1) / "uses").read_text().split())
            except OSError:
                live = None
            if live is not None:
                (gen_dir / "test.conf").write_text(main([f for f in app_files if f"apps/{f.name}" not in live]))
        return warnings

    @staticmethod
    def _certificate_files(certs_root: Path, app: str, index: int, cert) -> Path:
        """certs/<app>.<index>.<hash of cert and key>/cert.{crt,key}, written once (the key 0600)."""
        digest = hashlib.sha256((cert.cert + "\0" + cert.key).encode()).hexdigest()[:12]
        cert_dir = certs_root / f"{app}.{index}.{digest}"
        if not (cert_dir / "cert.key").exists():
            cert_dir.mkdir(mode=0o700, exist_ok=True)
            _write_atomically(cert_dir / "cert.crt", cert.cert)
            _write_atomically(cert_dir / "cert.key", cert.key, mode=0o600)
        return cert_dir

    def _test(self, gen_dir: Path) -> tuple[bool, str]:
        """`nginx -t` of a generation: of its test.conf when it has one (see _render)."""
        conf = gen_dir / "test.conf" if (gen_dir / "test.conf").exists() else gen_dir / "nginx.conf"
        proc = subprocess.run([self.nginx, "-t", "-q", "-p", f"{self.root}/", "-c", str(conf)],
                              capture_output=True, text=True, check=False)
        return proc.returncode == 0, _first_error(proc.stderr)

    def _certificate_from_message(self, err: str, gen_dir: Path, routes: dict[str, Route]) -> tuple[str, int] | None:
        """(app, index) of the certificate whose file nginx names in its error, when it names one."""
        m = re.search(rf"{re.escape(str(self.root))}/certs/([a-z0-9-]+)\.([0-9]+)\.[0-9a-f]+/cert\.(?:crt|key)\b", err)
        if m and m.group(1) in routes and int(m.group(2)) < len(routes[m.group(1)].certificates):
            return m.group(1), int(m.group(2))
        return None

    def _culprits_from_message(self, err: str, gen_dir: Path, routes: dict[str, Route]) -> list[tuple[str, str]]:
        """The app whose file nginx names in its error, when it names one."""
        base = re.escape(str(self.root))
        m = re.search(rf"{base}/(?:apps/([a-z0-9-]+)\.[0-9a-f]+\.conf|certs/([a-z0-9-]+)\.)", err)
        if m:
            app = m.group(1) or m.group(2)
            if app in routes:
                return [(app, err.replace(str(gen_dir), "<config>").replace(str(self.root), "<router>"))]
        return []

    def _bisect(self, apps: list[str], routes: dict[str, Route], generation: int) -> tuple[str, str] | None:
        """One app that makes nginx -t fail, found by testing parts of the configuration."""
        counter = iter(range(10**6))

        def test(subset: list[str]) -> tuple[bool, str]:
            probe = self.root / "generations" / f"{generation}.probe{next(counter)}"
            shutil.rmtree(probe, ignore_errors=True)
            try:
                self._render(probe, generation, {a: routes[a] for a in subset})
                ok, err = self._test(probe)
                return ok, err.replace(str(probe), "<config>")
            finally:
                shutil.rmtree(probe, ignore_errors=True)

        def search(subset: list[str]) -> tuple[str, str] | None:
            ok, err = test(subset)
            if ok:
                return None
            if len(subset) == 1:
                return subset[0], err
            half = len(subset) // 2
            found = search(subset[:half]) or search(subset[half:])
            if found:
                return found
            for i in range(1, len(subset) + 1):  # only together do they fail: the first that tips it
                ok, err = test(subset[:i])
                if not ok:
                    return subset[i - 1], err
            return None

        if test([])[0] is False:
            return None
        return search(apps)

    def _prune(self, live: int) -> None:
        """Drop old generations, then the shared app and certificate files none of those kept uses."""
        gens = self.root / "generations"
        used: set[str] = set()
        for entry in gens.iterdir():
            name = entry.name
            if ".probe" in name or (name.isdigit() and int(name) <= live - KEEP_GENERATIONS) \
                    or (name.isdigit() and int(name) > live):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            try:
                used.update((entry / "uses").read_text().split())
            except OSError:
                pass
        for folder in ("apps", "certs"):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.root / folder):
                    if f"{folder}/{entry.name}" not in used:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.path)

    # ----------------------------------------------------------------- reload confirmation
    def live_generation(self, timeout: float = 1.0) -> int | None:
        """The generation that answers a fresh connection, or None."""
        conn = http.client.HTTPConnection(self._probe_address(), self.http_port, timeout=timeout)
        try:
            conn.request("GET", "/generation", headers={"Host": STATUS_HOST})
            resp = conn.getresponse()
            body = resp.read().decode().strip()
            return int(body) if resp.status == 200 and body.isdigit() else None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _wait_for_generation(self, generation: int) -> bool:
        deadline = time.monotonic() + self.reload_timeout
        streak = 0
        while time.monotonic() < deadline:
            if self.live_generation() == generation:
                streak += 1
                if streak >= 3:
                    return True
            else:
                streak = 0
            time.sleep(0.02)
        return False

    def _wait_for_old_workers(self, old: list[int]) -> bool:
        """Wait until no worker of the previous generation accepts connections, then up to
        DRAIN_WAIT more for them to finish their requests. nginx's master signals the old workers
        only 100 ms after starting the new ones, and until then both kinds accept: callers that
        stop the old upstreams once `apply` returns would otherwise break those connections."""
        deadline = time.monotonic() + self.reload_timeout
        drained_by = None
        while True:
            states = [worker_state(pid) for pid in old]
            if "accepting" not in states:
                if drained_by is None:
                    drained_by = time.monotonic() + DRAIN_WAIT
                if "draining" not in states or time.monotonic() >= drained_by:
                    return True
            elif time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def _error_log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"
