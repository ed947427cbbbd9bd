"""The router: one HAProxy of the platform's own, whose routes change at runtime, never by a reload.

Layout under `<data_dir>/router/`:

    haproxy.cfg         settings, the listeners and N backend slots (`a0`..), with their servers
    hosts.map           host -> slot;  wildcards.map: `.suffix` -> slot (longest first)
    apps.map            slot -> app;   maintenance.map, allowlisted.map: slot -> 1
    allow/<slot>.acl    the networks an allow-listed app takes requests from
    certs.list          HAProxy's crt-list: a certificate file and the SNI names it is served for
    certs/<app>.<i>.<hash>.pem   certificate and key (0600)
    trusted.acl         proxies whose X-Forwarded-For is believed (DEIS_ROUTER_TRUSTED_PROXIES)
    state.json          each app's last good route and slot (0600);  admin.sock: the runtime API
    haproxy.pid, master.sock, lock

Every change (`update`, `apply`) is made live through HAProxy's runtime API: servers are added,
drained (no new requests; those in flight finish, for up to `drain_timeout`) and deleted; map, ACL
and crt-list entries are set. The files are rewritten too, so that a start or a restart serves the
same. Only a change of the file itself (settings, more slots than the file has) reloads HAProxy,
and a reload keeps idle keep-alive connections until their next answer (idle-close-on-response):
no client of any app sees an error from any change. A runtime command that fails falls back to
such a reload of the files.

HAProxy runs master-worker, in one of two ways with the same files: detached (`start()`, for
tests and tools), or supervised (`run()`: this process becomes the master in the foreground, for
supervisord). A Router made with `supervised=True` (DEIS_ROUTER_SUPERVISED=1) never starts one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from .model import InvalidRoute, Route, RouterError, certificate_problems, validate
from .runtime_api import RuntimeAPI, RuntimeAPIError
from .templates import MAINTENANCE_PAGE, config_template

# What HAProxy logs of each request (the logger parses it: deis/logger/router_log.py). Fields are
# key=value, separated by one space; `-` when unknown (app: no app has the host).
LOG_FORMAT = ("deis-router app=%[var(txn.app)] status=%ST bytes_out=%B bytes_in=%U ms=%Ta "
              "method=%HM path=%{+Q}HPO client=%ci server=%s rid=%[var(txn.rid)]")
SLOT_CHUNK = 64  # backend slots come in chunks of this many: a new app reloads once per 64
# A process marked down (a failed connection, or two failed checks) is looked at every 0.5 s, so
# a replacement at the same address (Docker restarting it) is routed within half a second of
# listening; one that is up every 3 s.
SERVER_CHECK = "check inter 3s downinter 500ms fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down"
_SAFE_PATH = re.compile(r"^[^\"'\\$;{}\s#,()]+$")
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_DRAIN = 0x18  # srv_admin_state bits: drain (forced or inherited)
_MAINT = 0x67  # srv_admin_state bits: maintenance of any kind


class _CertificateRefused(Exception):
    """HAProxy refused a certificate file: the routes are worked out again without it."""

    def __init__(self, path: str, why: str):
        super().__init__(why)
        self.path, self.why = path, why


@dataclass
class ApplyResult:
    generation: int = 0
    applied: list[str] = field(default_factory=list)  # apps live with the route given now
    rejected: dict[str, str] = field(default_factory=dict)  # app -> why
    kept: list[str] = field(default_factory=list)  # rejected apps still served by their last good route
    dropped: list[str] = field(default_factory=list)  # rejected apps with no last good route: not served
    warnings: list[str] = field(default_factory=list)
    reloaded: bool = False  # HAProxy reloaded its file (settings or slots changed, or a runtime change failed)
    unconfirmed: bool = False  # HAProxy runs but did not confirm the change in time
    runtime_commands: int = 0  # commands sent to the runtime API
    drained: int = 0  # servers drained and deleted
    draining: list = field(default_factory=list, repr=False)  # (slot, server) left for finish_drains

    @property
    def ok(self) -> bool:
        return not self.rejected


def find_haproxy(install: bool = False) -> str:
    """Path of the haproxy binary; with install=True, scripts/haproxy.sh installs it when missing."""
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    script = Path(__file__).resolve().parents[2] / "scripts" / "haproxy.sh"
    if install and script.exists():
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        raise RouterError(f"installing haproxy failed: {proc.stderr.strip()[-2000:]}")
    raise RouterError("haproxy is not installed (run scripts/haproxy.sh as root, or apt-get install -y haproxy)")


def size_bytes(text: str) -> int:
    """`1m`, `512k`, `0` (no limit) -> bytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise RouterError(f"invalid max_body_size {text!r} (like 1m, 512k, 0 for no limit)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def process_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.split(") ", 1)[-1][:1] not in ("Z", "X")


def server_name(addr: str, port: int, backup: bool) -> str:
    """A server's name in its slot, from what it is: the same route always gives the same names."""
    return f"{'b' if backup else 'p'}_{addr.replace(':', '_').replace('.', '_')}_{port}"


# Per process, by path: the parsed state file (every Router of a process shares the parse), and
# what this process last wrote to each file (compared in memory, not read back).
_STATES: dict[str, tuple] = {}
_WRITTEN: dict[str, str] = {}
_SERVED: dict[str, tuple] = {}  # root -> (generation, Desired) of the last change this process made


class _ByIdentity:
    """Values worked out from a Route, kept while that very object lives (routes read from the
    state file are the same objects from one change to the next): at 500 apps, a change of one
    app no longer validates, resolves and serialises the 499 others."""

    def __init__(self, limit: int = 20000):
        self.limit, self.items = limit, {}

    def get(self, route, make):
        key = id(route)
        hit = self.items.get(key)
        if hit is not None and hit[0] is route:
            return hit[1]
        if len(self.items) >= self.limit:
            self.items.clear()
        value = make(route)
        self.items[key] = (route, value)
        return value


# Bounded: the reconciler makes new Route objects every pass (see _desire: those equal to the
# served ones are not kept).
_SERVERS, _JSON = _ByIdentity(5000), _ByIdentity(5000)


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write `path` whole or not at all; False (and nothing written) when it holds `text` already."""
    if _WRITTEN.get(str(path)) == text:  # (this process wrote it: no need to read it back)
        return False
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            _WRITTEN[str(path)] = text
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    _WRITTEN[str(path)] = text
    return True


def _map_text(entries: dict[str, str]) -> str:
    return "".join(f"{k} {v}\n" for k, v in entries.items())


@dataclass
class Desired:
    """Everything HAProxy should serve, derived from the routes: the files' contents by name."""

    routes: dict[str, Route]
    slots: dict[str, str]  # app -> slot
    slot_count: int
    maps: dict[str, dict[str, str]]  # map file name -> entries (wildcards.map in match order)
    allow: dict[str, list[str]]  # slot -> networks
    servers: dict[str, list[tuple[str, str, bool]]]  # slot -> (name, addr:port, backup)
    certs: dict[str, tuple[str, list[str]]]  # cert file path -> (pem, SNI filters)


class Router:
    def __init__(self, data_dir: Path | str, http_port: int = 80, https_port: int | None = 443, *,
                 listen_address: str = "", connect_timeout: int = 30, read_timeout: int = 1300,
                 send_timeout: int | None = None, max_body_size: str = "1m",
                 worker_processes: str | int = "auto", worker_connections: int = 4096,
                 worker_shutdown_timeout: int | None = None, haproxy: str | None = None,
                 install: bool = True, reload_timeout: float = 10.0, supervised: bool | None = None,
                 drain_timeout: float = 10.0, trusted_proxies: list[str] | tuple = (),
                 log_socket: str | None = None):
        self.root = Path(data_dir).resolve() / "router"
        if not _SAFE_PATH.match(str(self.root)):
            raise RouterError(f"the router's directory {self.root} has characters HAProxy paths cannot hold")
        if listen_address and not re.match(r"^[0-9.]+$|^\[[0-9a-fA-F:]+\]$", listen_address):
            raise RouterError(f"invalid listen_address {listen_address!r} (an IPv4 address or [IPv6])")
        self.http_port = int(http_port)
        self.https_port = int(https_port) if https_port else None
        self.listen_address = listen_address
        try:
            self.trusted_proxies = [str(ipaddress.ip_network(p.strip(), strict=False)) for p in trusted_proxies if p.strip()]
        except ValueError as exc:
            raise RouterError(f"invalid trusted proxy: {exc}") from None
        self.settings = {
            "connect_timeout": int(connect_timeout), "read_timeout": int(read_timeout),
            "send_timeout": int(send_timeout if send_timeout is not None else read_timeout),
            "max_body_bytes": size_bytes(max_body_size),
            "nbthread": None if str(worker_processes) == "auto" else int(worker_processes),
            "maxconn": int(worker_connections),
            # Old processes of a reload serve their connections' last answers for this long at most.
            "hard_stop_after": int(worker_shutdown_timeout) if worker_shutdown_timeout else 120,
            "log_socket": log_socket if log_socket is not None else str(self.root.parent / "run" / "router-log.sock")}
        self._haproxy = haproxy
        self._install = install
        self.reload_timeout = reload_timeout
        self.drain_timeout = float(drain_timeout)
        self.api = RuntimeAPI(self.root / "admin.sock", timeout=reload_timeout)
        self.supervised = (os.environ.get("DEIS_ROUTER_SUPERVISED") == "1") if supervised is None else supervised

    # ----------------------------------------------------------------- paths and small helpers
    @property
    def conf(self) -> Path:
        return self.root / "haproxy.cfg"

    @property
    def pid_file(self) -> Path:
        return self.root / "haproxy.pid"

    @property
    def haproxy(self) -> str:
        if not self._haproxy:
            self._haproxy = find_haproxy(install=self._install)
        return self._haproxy

    def _bind(self, port: int) -> str:
        return f"{self.listen_address}:{port}" if self.listen_address else f":{port}"

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
        for d in ("allow", "certs"):
            (self.root / d).mkdir(mode=0o700, parents=True, exist_ok=True)

    def _load_state(self) -> dict:
        """The last good routes, their slots and the generation; parsed once per change of the file."""
        path = self.root / "state.json"
        try:
            info = path.stat()
            key = (info.st_ino, info.st_mtime_ns, info.st_size)
            cached = _STATES.get(str(path))
            if cached is None or cached[0] != key:
                data = json.loads(path.read_text())
                routes = {app: Route.from_dict(r) for app, r in data.get("routes", {}).items()}
                cached = (key, int(data.get("generation", 0)), routes, dict(data.get("slots", {})),
                          int(data.get("slot_count", 0)))
                _STATES[str(path)] = cached
        except (OSError, ValueError):
            return {"generation": 0, "routes": {}, "slots": {}, "slot_count": 0}
        return {"generation": cached[1], "routes": dict(cached[2]), "slots": dict(cached[3]),
                "slot_count": cached[4]}

    def _save_state(self, generation: int, desired: Desired) -> None:
        routes = ",\n".join(f"  {json.dumps(app)}: {_JSON.get(r, lambda r: json.dumps(r.to_dict()))}"
                             for app, r in sorted(desired.routes.items()))
        text = (f'{{"generation": {generation}, "slot_count": {desired.slot_count},\n'
                f' "slots": {json.dumps(dict(sorted(desired.slots.items())))},\n "routes": {{\n{routes}\n }}}}\n')
        path = self.root / "state.json"
        _write_atomically(path, text, mode=0o600)
        # The next load gives these very objects (see _ByIdentity), unless another process writes.
        info = path.stat()
        _STATES[str(path)] = ((info.st_ino, info.st_mtime_ns, info.st_size), generation, dict(desired.routes),
                              dict(desired.slots), desired.slot_count)

    # ----------------------------------------------------------------- process
    def master_pid(self) -> int | None:
        """The pid of this router's HAProxy master, when one is alive."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if process_alive(pid) and b"haproxy" in cmdline and str(self.conf).encode() in cmdline else None

    def running(self) -> bool:
        return self.master_pid() is not None

    def config_key(self) -> str:
        """What the file holds beyond routes (settings, listeners, slots): a reload when it changes."""
        try:
            m = re.search(r"setenv DEIS_ROUTER_CONFIG (\S+)", self.conf.read_text())
        except OSError:
            return ""
        return m.group(1) if m else ""

    def serving(self) -> bool:
        """HAProxy runs and its worker has loaded the file as it is now."""
        key = self.config_key()
        return bool(key) and self.running() and self.api.env("DEIS_ROUTER_CONFIG") == key

    def argv(self, foreground: bool = False) -> list[str]:
        """HAProxy's command line: master-worker, detached or in the foreground for a supervisor."""
        return [self.haproxy, "-W", "-f", str(self.conf), "-p", str(self.pid_file),
                "-S", f"{self.root}/master.sock,mode,600", "-db" if foreground else "-D"]

    def start(self) -> ApplyResult | None:
        """Start this router's HAProxy (detached) with the last good routes; nothing when it runs
        already. A supervised Router starts nothing: it waits for the supervisor's HAProxy."""
        if self.supervised:
            return self._await_supervised()
        with self._locked():
            if self.running():
                return None
            self._dirs()
            state = self._load_state()
            result, desired = self._write_everything(list(state["routes"].values()), state)
            proc = subprocess.run(self.argv(), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RouterError(f"haproxy did not start: {_first_error(proc.stderr)}")
            if not self._wait_serving():
                raise RouterError("haproxy did not start serving in time")
            self._save_state(result.generation, desired)
            result.reloaded = True
            return result

    def _await_supervised(self) -> None:
        with self._locked():
            pass
        deadline = time.monotonic() + self.reload_timeout
        while not self.serving():
            if time.monotonic() > deadline:
                raise RouterError("haproxy is not running; its supervisor starts it again (see its log)")
            time.sleep(0.05)
        return None

    def run(self) -> NoReturn:
        """Become this router's HAProxy master in the foreground, for a supervisor that restarts it
        when it dies: under the lock, stop a detached master, write the files from the last good
        routes, then exec HAProxy. A forked helper keeps the lock until it serves."""
        self.root.mkdir(parents=True, exist_ok=True)
        argv = self.argv(foreground=True)  # finds haproxy before anything changes
        lock = open(self.root / "lock", "a")  # noqa: SIM115 - the helper below holds it past the exec
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            self._dirs()
            if (pid := self.master_pid()) is not None:
                self._stop_locked(pid, timeout=self.reload_timeout)
            state = self._load_state()
            result, desired = self._write_everything(list(state["routes"].values()), state)
            self._save_state(result.generation, desired)
        except BaseException:
            lock.close()
            raise
        me = os.getpid()
        child = os.fork()
        if child == 0:  # the helper, detached from this process (a grandchild: haproxy never reaps it)
            try:
                if os.fork() == 0:
                    with contextlib.suppress(BaseException):
                        deadline = time.monotonic() + self.reload_timeout
                        while process_alive(me) and time.monotonic() < deadline and not self.serving():
                            time.sleep(0.02)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        lock.close()
        os.execv(argv[0], argv)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop HAProxy: gracefully (SIGUSR1: finish what is in flight) for up to `timeout`
        seconds, then at once. (A supervised HAProxy is its supervisor's to stop.)"""
        with self._locked():
            pid = self.master_pid()
            if pid is not None:
                self._stop_locked(pid, timeout)

    def _stop_locked(self, pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGUSR1, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not process_alive(pid):
                    with contextlib.suppress(OSError):
                        self.pid_file.unlink()
                    return
                time.sleep(0.02)
        raise RouterError(f"haproxy master {pid} did not stop")

    def _wait_serving(self) -> bool:
        deadline = time.monotonic() + self.reload_timeout
        while time.monotonic() < deadline:
            if self.serving():
                return True
            time.sleep(0.02)
        return False

    # ----------------------------------------------------------------- routes
    def apply(self, routes: list[Route], wait: bool = True) -> ApplyResult:
        """Make `routes` all the router serves, app by app as far as HAProxy accepts them."""
        with self._locked():
            result, result.draining = self._converge(list(routes), self._load_state(),
                                                     verify={getattr(r, "app", None) for r in routes})
        return self.finish_drains(result) if wait else result

    def finish_drains(self, result: ApplyResult) -> ApplyResult:
        """Wait for the servers `result` left draining (see update's `wait`), then delete them."""
        if result.draining:
            result.drained, result.draining = self._finish_drains(result.draining), []
        return result

    def routes(self) -> dict[str, Route]:
        """The routes served now (the last good one of each app)."""
        with self._locked():
            return self._load_state()["routes"]

    def update(self, changes: dict[str, Route | None], only_if_changed: bool = False,
               keep_upstreams: bool = False, remove_others: bool = False, wait: bool = True) -> ApplyResult | None:
        """Change some apps' routes (None removes one) and keep every other app's as it is, under
        the router's lock. `keep_upstreams`: the changed apps keep the upstreams served now (for
        hosts and certificates, which must not race a deploy's switch). `remove_others`: apps not
        in `changes` go. `only_if_changed`: nothing happens when HAProxy serves the result already
        (the deployer's resync). Returns once servers no longer routed to have finished their
        requests (or `drain_timeout` passed) and are deleted; with `wait=False` at once, leaving
        that to `finish_drains(result)` (the router's reconciler: one app's drain never holds up
        another's change)."""
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
            if only_if_changed and self._unchanged(changes, current, state, remove_others):
                return None
            result, result.draining = self._converge(list(current.values()), state, verify=set(changes))
        return self.finish_drains(result) if wait else result

    def _unchanged(self, changes, current, state, remove_others) -> bool:
        """The changed apps validate to what is served, and HAProxy has their servers (one
        listing of every backend's servers, however many apps: the reconciler's pass over 500)."""
        served = state["routes"]
        try:
            for app in changes:
                if app not in current:
                    if app in served:
                        return False
                    continue
                route = current[app]
                # Equal to the served route (already valid and normal): no need to validate it.
                if route != served.get(app) and validate(route) != served.get(app):
                    return False
        except InvalidRoute:
            return False
        if remove_others and current.keys() != served.keys():
            return False
        if not self.serving():
            return False
        wanted = [app for app in changes if app in current]
        if not wanted:
            return True
        try:
            have = self.api.all_servers() if len(wanted) > 1 else \
                {state["slots"].get(wanted[0]): self.api.servers(state["slots"].get(wanted[0]))}
        except RuntimeAPIError:
            return False
        for app in wanted:
            slot = state["slots"].get(app)
            if slot is None:
                return False
            want = {name for name, _, _ in self._servers_of(served[app])}
            if {n for n, s in have.get(slot, {}).items() if not s["admin_state"] & (_DRAIN | _MAINT)} != want:
                return False
        return True

    # ----------------------------------------------------------------- what to serve
    def _desire(self, routes: list[Route], state: dict, result: ApplyResult, refused: set = frozenset()) -> Desired:
        """Validate routes (a rejected app keeps its last good route), share out hosts and slots,
        and derive every file's content."""
        last_good: dict[str, Route] = state["routes"]
        current: dict[str, Route] = {}
        for route in routes:
            app = getattr(route, "app", "?")
            if isinstance(app, str) and app in current:
                result.warnings.append(f"{app}: a second route for the app was ignored")
                continue
            try:
                # The last good route (or one equal to it) was checked when it went live; a new one
                # is checked once per object (the deployer's retries pass the same one).
                served = last_good.get(app)
                checked = served if route is served or route == served else validate(route)
                self._servers_of(checked)  # resolves upstream names
            except InvalidRoute as exc:
                result.rejected[str(app)] = str(exc)
                if isinstance(app, str) and app in last_good:
                    current[app] = last_good[app]
                continue
            result.warnings += certificate_problems(route)
            current[checked.app] = checked

        slots = {app: s for app, s in state["slots"].items() if app in current}
        taken = set(slots.values())
        free = (f"a{i}" for i in range(10**6) if f"a{i}" not in taken)
        for app in sorted(current):
            if app not in slots:
                slots[app] = next(free)
        highest = max((int(s[1:]) + 1 for s in slots.values()), default=0)
        slot_count = max(state.get("slot_count", 0), SLOT_CHUNK)
        while slot_count < highest:
            slot_count += SLOT_CHUNK

        hosts, wildcards, apps_map, maint, allowlisted = {}, {}, {}, {}, {}
        allow, servers, certs = {}, {}, {}
        for app in sorted(current):
            route, slot = current[app], slots[app]
            apps_map[slot] = app
            mine = []
            for host in route.hosts:
                table, key = (wildcards, host[1:]) if host.startswith("*.") else (hosts, host)
                if key in table:
                    owner = next(a for a, s in slots.items() if s == table[key])
                    result.warnings.append(f"{app}: host {host} is already served by {owner}")
                    continue
                table[key] = slot
                mine.append(host)
            if not mine:
                result.warnings.append(f"{app}: no host name left to serve")
            if route.maintenance:
                maint[slot] = "1"
            if route.allow:
                allowlisted[slot] = "1"
            allow[slot] = list(route.allow)
            servers[slot] = self._servers_of(route)
            if self.https_port:
                covered: set[str] = set()
                for i, cert in enumerate(route.certificates):
                    names = [h for h in mine if h not in covered and cert.covers(h)]
                    if not names:
                        continue
                    pem = cert.cert.strip() + "\n" + cert.key.strip() + "\n"
                    digest = hashlib.sha256(pem.encode()).hexdigest()[:12]
                    if digest in refused:
                        continue
                    covered.update(names)
                    certs[str(self.root / "certs" / f"{app}.{i}.{digest}.pem")] = (pem, names)
        wildcards = dict(sorted(wildcards.items(), key=lambda kv: (-len(kv[0]), kv[0])))
        return Desired(routes=current, slots=slots, slot_count=slot_count, allow=allow, servers=servers,
                       certs=certs, maps={"hosts.map": hosts, "wildcards.map": wildcards, "apps.map": apps_map,
                                          "maintenance.map": maint, "allowlisted.map": allowlisted})

    @staticmethod
    def _servers_of(route: Route) -> list[tuple[str, str, bool]]:
        return _SERVERS.get(route, Router._resolve_servers)

    @staticmethod
    def _resolve_servers(route: Route) -> list[tuple[str, str, bool]]:
        out = []
        for items, backup in ((route.upstreams, False), (route.backups, True)):
            for addr, port in items:
                try:
                    ip = str(ipaddress.ip_address(addr))
                except ValueError:
                    try:
                        ip = socket.gethostbyname(addr)
                    except OSError:
                        raise InvalidRoute(f"host not found in upstream {addr}:{port}") from None
                shown = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
                out.append((server_name(ip, port, backup), shown, backup))
        return out

    def _static_key(self, slot_count: int) -> str:
        """What the file holds beyond routes: HAProxy reloads when this changes, only then."""
        static = {"s": self.settings, "http": self._bind(self.http_port), "slots": slot_count,
                  "https": self._bind(self.https_port) if self.https_port else None,
                  "trusted": self.trusted_proxies, "check": SERVER_CHECK, "root": str(self.root)}
        return hashlib.sha256(json.dumps(static, sort_keys=True).encode()).hexdigest()[:16]

    def _config_text(self, desired: Desired) -> str:
        return config_template.render(
            root=self.root, s=self.settings, config_key=self._static_key(desired.slot_count), log_format=LOG_FORMAT,
            slots=[f"a{i}" for i in range(desired.slot_count)], servers=desired.servers,
            http_bind=self._bind(self.http_port), server_options=SERVER_CHECK,
            https_bind=self._bind(self.https_port) if self.https_port else None)

    def _write_files(self, desired: Desired) -> None:
        """Every file HAProxy reads, from `desired` (unchanged files are left as they are)."""
        self._dirs()
        for name, entries in desired.maps.items():
            _write_atomically(self.root / name, _map_text(entries))
        for i in range(desired.slot_count):
            slot = f"a{i}"
            _write_atomically(self.root / "allow" / f"{slot}.acl", "".join(f"{n}\n" for n in desired.allow.get(slot, [])))
        _write_atomically(self.root / "trusted.acl", "".join(f"{n}\n" for n in self.trusted_proxies))
        _write_atomically(self.root / "maintenance.html", MAINTENANCE_PAGE)
        for path, (pem, _) in desired.certs.items():
            if not os.path.exists(path):
                _write_atomically(Path(path), pem, mode=0o600)
        _write_atomically(self.root / "certs.list",
                          "".join(f"{path} {' '.join(names)}\n" for path, (_, names) in desired.certs.items()))
        _write_atomically(self.conf, self._config_text(desired))

    def _prune_certs(self, desired: Desired) -> None:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / "certs"):
                if entry.path not in desired.certs:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def _check(self) -> tuple[bool, str]:
        proc = subprocess.run([self.haproxy, "-c", "-q", "-f", str(self.conf)], capture_output=True,
                              text=True, check=False)
        return proc.returncode == 0, _first_error(proc.stderr)

    def _write_everything(self, routes: list[Route], state: dict) -> tuple[ApplyResult, Desired]:
        """Write the files for `routes` and check them with `haproxy -c`; a certificate HAProxy
        refuses is left out (it never keeps a route from going live)."""
        refused: set[str] = set()
        refusals: list[str] = []
        while True:
            result = ApplyResult(generation=state["generation"] + 1)
            desired = self._desire(routes, state, result, refused)
            self._write_files(desired)
            ok, err = self._check()
            if ok:
                break
            bad = next((p for p in desired.certs if p in err), None)
            if bad is None:
                raise RouterError(f"haproxy refuses the router's configuration: {err}")
            refused.add(self._refuse(bad, err.replace(str(self.root), "<router>"), refusals))
        result.warnings += refusals
        self._prune_certs(desired)
        self._finish(result, desired)
        return result, desired

    @staticmethod
    def _refuse(path: str, why: str, refusals: list[str]) -> str:
        """Note a refused certificate file in `refusals`; its digest (see _desire)."""
        name = Path(path).name
        refusals.append(f"{name.split('.')[0]}: certificate is not served: {why}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return name.rsplit(".", 2)[-2]

    @staticmethod
    def _finish(result: ApplyResult, desired: Desired) -> None:
        for app in sorted(result.rejected):
            (result.kept if app in desired.routes else result.dropped).append(app)
        result.applied = sorted(a for a in desired.routes if a not in result.rejected)

    # ----------------------------------------------------------------- converging a running HAProxy
    def _converge(self, routes: list[Route], state: dict, verify: set = frozenset()) -> tuple[ApplyResult, list[tuple[str, str]]]:
        """Serve `routes`: at runtime when HAProxy serves the file as it stands, else by writing
        the files (and reloading a running HAProxy). The servers of the apps in `verify` are
        compared with HAProxy's, whatever the state file says. Returns servers to drain."""
        result = ApplyResult(generation=state["generation"] + 1)
        desired = self._desire(routes, state, result)
        if not self.serving() or self._static_key(desired.slot_count) != self.config_key():
            return self._reload(routes, state), []
        refused: set[str] = set()
        refusals: list[str] = []
        try:
            # The certificate files HAProxy's crt-list names now (one listing a change).
            listed = set(self.api.crt_list(str(self.root / "certs.list"))) if self.https_port else set()
            while True:
                try:
                    self._upload_certificates(desired, result, listed)
                    break
                except _CertificateRefused as exc:
                    refused.add(self._refuse(exc.path, exc.why, refusals))
                    result = ApplyResult(generation=state["generation"] + 1)
                    desired = self._desire(routes, state, result, refused)
            drains = self._runtime(desired, self._served(state), state, result, verify, listed)
        except RuntimeAPIError as exc:
            result.warnings.append(f"a runtime change failed, HAProxy reloads its files instead: {exc}")
            return self._reload(routes, state), []
        result.warnings += refusals
        # Only the state file: the others are HAProxy's to read at a start or reload, and those
        # write them all from it first (_write_everything). One file written a change, not 500.
        self._save_state(result.generation, desired)
        _SERVED[str(self.root)] = (result.generation, desired)
        self._finish(result, desired)
        return result, drains

    def _served(self, state: dict) -> Desired:
        """What HAProxy serves now: the state's routes worked out (kept from the change that
        made them, when this process made it)."""
        cached = _SERVED.get(str(self.root))
        if cached is not None and cached[0] == state["generation"]:
            return cached[1]
        return self._desire(list(state["routes"].values()), state, ApplyResult())

    def _upload_certificates(self, desired: Desired, result: ApplyResult, listed: set[str]) -> None:
        """Give HAProxy the certificate files it does not have yet (before any route uses them)."""
        for path, (pem, _) in desired.certs.items():
            if path in listed:
                continue
            try:
                result.runtime_commands += 3
                with contextlib.suppress(RuntimeAPIError):
                    self.api.do(f"new ssl cert {path}")
                self.api.do(f"set ssl cert {path}", pem)
                self.api.do(f"commit ssl cert {path}")
            except RuntimeAPIError as exc:
                with contextlib.suppress(RuntimeAPIError):
                    self.api.do(f"abort ssl cert {path}")
                raise _CertificateRefused(path, str(exc)) from None

    def _reload(self, routes: list[Route], state: dict) -> ApplyResult:
        result, desired = self._write_everything(routes, state)
        if self.running():
            try:
                answer = RuntimeAPI(self.root / "master.sock").raw("reload")
            except RuntimeAPIError:
                answer = None
            if answer is None:
                with contextlib.suppress(ProcessLookupError, TypeError):
                    os.kill(self.master_pid(), signal.SIGUSR2)
            result.reloaded = self._wait_serving()
            if not result.reloaded:
                result.unconfirmed = True
                result.warnings.append("haproxy did not take the new configuration in time")
        self._save_state(result.generation, desired)
        return result

    def _runtime(self, desired: Desired, served: Desired, state: dict, result: ApplyResult,
                 verify: set, listed: set[str]) -> list[tuple[str, str]]:
        api = self.api

        def do(command: str, payload: str | None = None) -> str:
            result.runtime_commands += 1
            return api.do(command, payload)

        root = self.root
        # Slots whose servers may differ: those of apps whose route changed, and freed ones.
        old_maps = served.maps
        old_apps = old_maps["apps.map"]
        changed_slots = sorted({s for s, a in desired.maps["apps.map"].items() if old_apps.get(s) != a}
                               | {s for s in old_apps if s not in desired.maps["apps.map"]}
                               | {desired.slots[a] for a, r in desired.routes.items()
                                  if state["routes"].get(a) != r or a in verify})
        # 1. names of new apps' slots, then the servers (new ones up before old ones drain)
        self._sync_map(do, root / "apps.map", old_apps, desired.maps["apps.map"], deletes=False)
        drains: list[tuple[str, str]] = []
        for slot in changed_slots:
            want = {name: (addr, backup) for name, addr, backup in desired.servers.get(slot, [])}
            have = api.servers(slot)
            for name, (addr, backup) in want.items():
                if name in have:
                    if have[name]["admin_state"] & (_DRAIN | _MAINT):
                        do(f"set server {slot}/{name} state ready")
                    continue
                do(f"add server {slot}/{name} {addr}{' backup' if backup else ''} {SERVER_CHECK}")
                do(f"enable server {slot}/{name}")
                do(f"enable health {slot}/{name}")
            for name, info in have.items():
                if name in want:
                    continue
                if info["admin_state"] & _MAINT:
                    with contextlib.suppress(RuntimeAPIError):
                        do(f"del server {slot}/{name}")
                    continue
                if not info["admin_state"] & _DRAIN:
                    do(f"set server {slot}/{name} state drain")
                drains.append((slot, name))
        # 2. allow-lists before they are switched on, maintenance
        for slot in changed_slots:
            acl = root / "allow" / f"{slot}.acl"
            old = served.allow.get(slot, [])
            new = desired.allow.get(slot, [])
            if old != new:
                self._replace_all(do, "acl", acl, new)
        for name in ("allowlisted.map", "maintenance.map"):
            self._sync_map(do, root / name, old_maps[name], desired.maps[name])
        # 3. certificates, then the hosts
        old_filters = {path: names for path, (_, names) in served.certs.items()}
        for path, (_, names) in desired.certs.items():
            if path in listed and old_filters.get(path) == names:
                continue
            if path in listed:
                do(f"del ssl crt-list {root / 'certs.list'} {path}")
            do(f"add ssl crt-list {root / 'certs.list'}", f"{path} {' '.join(names)}")
        self._sync_map(do, root / "hosts.map", old_maps["hosts.map"], desired.maps["hosts.map"])
        if old_maps["wildcards.map"] != desired.maps["wildcards.map"] or \
                list(old_maps["wildcards.map"]) != list(desired.maps["wildcards.map"]):
            self._replace_all(do, "map", root / "wildcards.map",
                              [f"{key} {value}" for key, value in desired.maps["wildcards.map"].items()])
        for path in listed - set(desired.certs):
            with contextlib.suppress(RuntimeAPIError):
                do(f"del ssl crt-list {root / 'certs.list'} {path}")
                do(f"del ssl cert {path}")
        self._sync_map(do, root / "apps.map", old_apps, desired.maps["apps.map"], adds=False)
        return drains

    @staticmethod
    def _replace_all(do, kind: str, path: Path, entries: list[str]) -> None:
        """Swap an ACL's or map's whole content in one step (prepare a version, fill, commit)."""
        version = do(f"prepare {kind} {path}").rsplit(":", 1)[-1].strip()
        for entry in entries:
            do(f"add {kind} @{version} {path} {entry}")
        do(f"commit {kind} @{version} {path}")

    @staticmethod
    def _sync_map(do, path: Path, old: dict, new: dict, adds: bool = True, deletes: bool = True) -> None:
        for key, value in new.items():
            if adds and old.get(key) != value:
                do(f"{'set' if key in old else 'add'} map {path} {key} {value}")
        for key in old:
            if deletes and key not in new:
                do(f"del map {path} {key}")

    def _finish_drains(self, drains: list[tuple[str, str]]) -> int:
        """Wait (outside the lock) until the drained servers have nothing in flight, or
        drain_timeout passes; then delete those no route has taken back meanwhile."""
        deadline = time.monotonic() + self.drain_timeout
        pending = set(drains)
        while pending and time.monotonic() < deadline:
            try:
                rows = {(r["pxname"], r["svname"]): int(r["scur"] or 0)
                        for slot in {slot for slot, _ in pending} for r in self.api.stats(slot)}
            except RuntimeAPIError:
                return 0
            pending = {d for d in pending if rows.get(d, 0) > 0}
            if pending:
                time.sleep(0.01)  # one small `show stat` of the slot a look
        deleted = 0
        with self._locked():
            state = self._load_state()
            wanted = {(state["slots"][app], name) for app, route in state["routes"].items()
                      if app in state["slots"] for name, _, _ in self._servers_of(route)}
            for slot, name in drains:
                if (slot, name) in wanted:
                    continue
                try:
                    self.api.do(f"set server {slot}/{name} state maint")
                    self.api.do(f"shutdown sessions server {slot}/{name}")
                    self.api.do(f"del server {slot}/{name}")
                    deleted += 1
                except RuntimeAPIError:
                    pass  # left in maintenance (no traffic); the next change of the slot deletes it
        return deleted


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "[ALERT]" in ln]
    return "; ".join((errors or lines)[:3])[:2000]
