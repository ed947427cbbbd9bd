"""An engine entirely in memory, for the controller's tests: nothing runs, but every verb behaves
as a real engine's would (tests/scheduler/engine_suite.py holds it to the same contract as Docker).

`FakeScheduler.shared()` is the one instance of the process (what get_scheduler("fake") returns);
`reset()` forgets everything it ran. Processes get addresses 10.99.<n>.<m> and PORT (the PORT
config value, else 5000; always 5000 for buildpack slugs).

Knobs, read from the release's config so a test can make an app that fails:
- `FAKE_WEB=ok` (default) | `crash` | `hang`: the web processes (and `cmd`, an image's own CMD)
  start fine; or exit at once (DeployError "web.1 exited with code 1"); or accept connections
  and never answer the health check (DeployError "... did not answer GET / within <s> s").
  `FAKE_<TYPE>=crash` (e.g. FAKE_WORKER) makes processes of another type exit at once.
- `FAKE_DELAY=<seconds>`: the health check of new processes takes that long (at most
  MAX_DELAY), during which they show as `starting`.
- `FAKE_CPU=<percent>` (default 0.5) and `FAKE_MEMORY=<bytes>` (default 32 MiB): what `usage`
  reports of each running process; its memory limit is the release's for the type, else the
  platform's default (limits.py), as Docker's would be.

One-offs (`run`): the output is "output of <command>\\n"; a command ending in `exit N` exits with
N; `sleep S` in it sleeps S seconds (at most MAX_DELAY), or until `timeout`, which exits 124.

Test helpers beyond the interface: `kill(app, name, exit_code)` makes a process die (the quick
repair of reconcile_app starts it again), `runs` lists the one-offs run as (app, release,
command), `removed_images` the images `remove` was given.
"""

from __future__ import annotations

import itertools
import queue
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from deis import rules

from . import (Convergence, DeployError, Endpoint, LockBusy, Process, ProcessState, ReleaseSpec, Scheduler,
               new_report)
from .health import Check
from .limits import ContainerLimits

ROUTED = ("web", "cmd")
MAX_DELAY = 30.0
STEP = 0.05
LOG_LINES = 1000
_EXIT = re.compile(r"\bexit\s+(\d+)\s*$")
_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d*)?)")


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat()


def _seconds(value, limit: float = MAX_DELAY) -> float:
    try:
        return min(limit, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


def _sleep(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(STEP, left))


@dataclass
class _Proc:
    app: str
    version: int
    type: str
    num: str
    name: str
    id: str
    address: str
    port: int
    started: float
    state: str = ProcessState.STARTING
    promoted: bool = False
    restarts: int = 0
    exit_code: int | None = None
    last_exit: dict | None = None
    usage: tuple[float, int, int | None] = (0.0, 0, None)  # cpu percent, memory bytes, limit

    @property
    def tag(self) -> str:
        return f"{self.type}.{self.num}"

    @property
    def alive(self) -> bool:
        return self.state in (ProcessState.UP, ProcessState.STARTING)


class _Events:
    """A blocking iterator of app names; `close()` ends it."""

    _END = object()

    def __init__(self, owner: "FakeScheduler"):
        self.owner, self.queue = owner, queue.Queue()

    def __iter__(self):
        while (app := self.queue.get()) is not self._END:
            yield app

    def close(self) -> None:
        self.owner._streams.discard(self)
        self.queue.put(self._END)


class FakeScheduler(Scheduler):
    name = "fake"
    _shared: "FakeScheduler | None" = None
    _shared_guard = threading.Lock()

    def __init__(self):
        self._guard = threading.RLock()
        self._app_locks: dict[str, threading.RLock] = {}
        self._streams: set[_Events] = set()
        self.reset()

    @classmethod
    def shared(cls) -> "FakeScheduler":
        with cls._shared_guard:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def reset(self) -> None:
        with self._guard:
            self._procs: dict[str, list[_Proc]] = {}
            self._logs: dict[str, list[str]] = {}
            self._counter = itertools.count(1)
            self._last_start = 0.0
            self.runs: list[tuple[str, str, str]] = []
            self.removed_images: list[str] = []
            for stream in list(self._streams):
                stream.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _log(self, app: str, tag: str, message: str) -> None:
        lines = self._logs.setdefault(app, [])
        lines.append(f"{_iso(time.time())} {app}[{tag}]: {message}")
        del lines[:-LOG_LINES]

    def _notify(self, app: str) -> None:
        for stream in list(self._streams):
            stream.queue.put(app)

    def _start(self, spec: ReleaseSpec, ptype: str, num: str, name: str, promoted: bool) -> _Proc:
        port = 5000
        if not spec.buildpack and str(spec.env.get("PORT", "")).isdigit() and 0 < int(spec.env["PORT"]) < 65536:
            port = int(spec.env["PORT"])
        with self._guard:
            n = next(self._counter)
            self._last_start = max(time.time(), self._last_start + 1e-6)  # strictly increasing
            proc = _Proc(spec.app, spec.version, ptype, num, name, f"fake{n:08x}",
                         f"10.99.{n // 254 % 256}.{n % 254 + 1}", port, self._last_start,
                         ProcessState.UP if promoted else ProcessState.STARTING, promoted,
                         usage=self._usage_of(spec, ptype))
            self._procs.setdefault(spec.app, []).append(proc)
            self._log(spec.app, proc.tag, f"started {spec.release} on port {port}")
        self._notify(spec.app)
        return proc

    def _stop(self, procs: list[_Proc]) -> None:
        with self._guard:
            for proc in procs:
                if proc in self._procs.get(proc.app, []):
                    self._procs[proc.app].remove(proc)
                    self._log(proc.app, proc.tag, "stopped")
                    if not self._procs[proc.app]:
                        del self._procs[proc.app]
        for app in {p.app for p in procs}:
            self._notify(app)

    def _list(self, app: str) -> list[_Proc]:
        with self._guard:
            return sorted(self._procs.get(app, []), key=lambda p: (p.type, int(p.num), p.version, p.started))

    @staticmethod
    def _wanted(spec: ReleaseSpec, structure: dict) -> list[tuple[str, str]]:
        types = set(spec.process_types())
        return [(t, str(n)) for t, count in sorted((structure or {}).items()) if t in types
                for n in range(1, int(count or 0) + 1)]

    @staticmethod
    def _usage_of(spec: ReleaseSpec, ptype: str) -> tuple[float, int, int | None]:
        limit = rules.memory_bytes(spec.memory.get(ptype) or ContainerLimits.from_environment().memory)
        return (_seconds(spec.env.get("FAKE_CPU", 0.5), limit=1e6),
                int(_seconds(spec.env.get("FAKE_MEMORY", 32 << 20), limit=float(1 << 50))), limit)

    @staticmethod
    def _behaviour(spec: ReleaseSpec, ptype: str) -> str:
        key = "FAKE_WEB" if ptype in ROUTED else f"FAKE_{ptype.upper()}"
        return str(spec.env.get(key, "ok")).strip().lower()

    def _fail(self, spec: ReleaseSpec, proc: _Proc, reason: str):
        with self._guard:
            logs = [line for line in self._logs.get(spec.app, []) if f"[{proc.tag}]" in line][-50:]
        raise DeployError(f"{proc.tag} {reason} (release {spec.release} of {spec.app} was not deployed)", logs)

    def _check(self, spec: ReleaseSpec, new: list[_Proc]) -> None:
        """What a health check of the new processes would find (see the knobs)."""
        for proc in new:
            if self._behaviour(spec, proc.type) == "crash":
                with self._guard:
                    proc.state, proc.exit_code = ProcessState.CRASHED, 1
                    proc.last_exit = {"at": _iso(time.time()), "reason": "exited", "exit_code": 1}
                    self._log(spec.app, proc.tag, "crashing (FAKE crash)")
                self._fail(spec, proc, "exited with code 1")
        _sleep(_seconds(spec.env.get("FAKE_DELAY")))
        check = Check.from_env(spec.env)
        for proc in new:
            if proc.type in ROUTED and self._behaviour(spec, proc.type) == "hang":
                self._fail(spec, proc, f"accepted a connection on port {proc.port} but did not answer "
                                       f"GET {check.url or '/'} within {check.timeout:g} s")

    @staticmethod
    def _endpoints_of(procs: list[_Proc]) -> list[Endpoint]:
        return sorted((Endpoint(p.app, p.type, int(p.num), p.address, p.port) for p in procs if p.type in ROUTED),
                      key=lambda e: (e.type, e.num, e.address))

    # -- the Scheduler verbs --------------------------------------------------------------------

    @contextmanager
    def locked(self, app: str, blocking: bool = True):
        with self._guard:
            lock = self._app_locks.setdefault(app, threading.RLock())
        if not lock.acquire(blocking=blocking):
            raise LockBusy(f"{app} is being changed")
        try:
            yield
        finally:
            lock.release()

    def converge(self, request: Convergence) -> None:
        spec = request.spec
        with self.locked(spec.app):
            wanted = self._wanted(spec, request.structure)
            procs = self._list(spec.app)
            keep: dict[tuple[str, str], _Proc] = {}
            for p in procs:
                if p.version == spec.version and (p.type, p.num) in wanted and p.alive and p.promoted and not (
                        request.restart and request.restart.covers(p.type, p.num, p.started)):
                    keep[(p.type, p.num)] = p
            retire = [p for p in procs if keep.get((p.type, p.num)) is not p]
            dead = [p for p in retire if p.version == spec.version and not p.alive]  # hold names needed
            self._stop(dead)
            retire = [p for p in retire if p not in dead]
            taken = {p.name for p in retire}
            missing = [w for w in wanted if w not in keep]
            if missing:
                request.say("starting", f"starting {', '.join(f'{t}.{n}' for t, n in missing)} of {spec.release}")
                new = []
                try:
                    for ptype, num in missing:
                        name = f"{spec.app}.{spec.release}.{ptype}.{num}"
                        if name in taken:  # the process it replaces runs on until retired
                            name += f".{secrets.token_hex(3)}"
                        new.append(self._start(spec, ptype, num, name, promoted=False))
                    self._check(spec, new)
                    request.say("switching", "routing to the new processes")
                    if request.switch is not None:
                        self._switch(request, self._endpoints_of(list(keep.values()) + new))
                except BaseException:
                    self._stop(new)
                    raise
                with self._guard:
                    for proc in new:
                        proc.state, proc.promoted = ProcessState.UP, True
            elif request.switch is not None:
                self._switch(request, self._endpoints_of(list(keep.values())))
            if retire:
                request.say("retiring", f"stopping {', '.join(p.tag for p in retire)}")
                self._stop(retire)

    @staticmethod
    def _switch(request: Convergence, endpoints: list[Endpoint]) -> None:
        try:
            request.switch(endpoints, [])
        except Exception as exc:
            raise DeployError(f"Switching routes to release {request.spec.release} of {request.spec.app} "
                              f"failed: {exc}; the processes running before keep serving.") from exc

    def reconcile_app(self, spec, structure, app=None, switch=None) -> dict:
        app = spec.app if spec is not None else app
        report = new_report()
        with self.locked(app):
            procs = self._list(app)
            if spec is None:
                self._stop(procs)
                report["removed"].extend(p.name for p in procs)
                return report
            wanted = self._wanted(spec, structure)
            if wanted and any(p.version != spec.version and p.alive for p in procs):
                self.converge(Convergence(spec, structure, switch))  # a release change never finished
                report["deployed"].append(app)
                return report
            ours = {(p.type, p.num): p for p in procs if p.version == spec.version and (p.type, p.num) in wanted}
            extras = [p for p in procs if ours.get((p.type, p.num)) is not p]
            self._stop(extras)
            report["removed"].extend(p.name for p in extras)
            for ptype, num in wanted:
                proc = ours.get((ptype, num))
                if proc is None:
                    name = f"{app}.{spec.release}.{ptype}.{num}"
                    report["started"].append(self._start(spec, ptype, num, name, promoted=True).name)
                elif not proc.alive:
                    with self._guard:
                        proc.state, proc.promoted, proc.restarts = ProcessState.UP, True, proc.restarts + 1
                        self._last_start = proc.started = max(time.time(), self._last_start + 1e-6)
                    report["restarted"].append(proc.name)
                    self._notify(app)
        return report

    def remove(self, app: str, images=()) -> None:
        with self.locked(app):
            self._stop(self._list(app))
            with self._guard:
                self._logs.pop(app, None)
                self.removed_images.extend(images)

    def run(self, spec, command, timeout=None, output=None) -> tuple[int, str]:
        self.runs.append((spec.app, spec.release, command))
        pieces = [f"output of {command}\n"]
        if output is not None:
            output(pieces[0])
        code = int(_EXIT.search(command).group(1)) if _EXIT.search(command) else 0
        wanted = sum(float(s) for s in _SLEEP.findall(command))
        limit = MAX_DELAY if timeout is None else min(MAX_DELAY, timeout)
        _sleep(min(wanted, limit))
        if timeout is not None and wanted > timeout:
            pieces.append(f"Timed out after {timeout:g} s: `{command}` was killed.\n")
            if output is not None:
                output(pieces[-1])
            code = 124
        return code, "".join(pieces)

    def processes(self, app: str) -> list[Process]:
        with self._guard:
            return [Process(type=p.type, num=int(p.num), state=p.state, release=f"v{p.version}", name=p.name,
                            id=p.id, started=_iso(p.started), restarts=p.restarts, exit_code=p.exit_code,
                            last_exit=p.last_exit, address=p.address, port=p.port) for p in self._list(app)]

    def usage(self, app: str) -> list[dict]:
        with self._guard:
            return [{"name": p.name, "type": p.type, "num": int(p.num), "release": f"v{p.version}",
                     "cpu_percent": p.usage[0], "memory_bytes": p.usage[1], "memory_limit_bytes": p.usage[2]}
                    for p in self._list(app) if p.alive]

    def endpoints(self, app: str) -> list[Endpoint]:
        """Promoted, up web processes of the newest release serving."""
        serving = [p for p in self._list(app) if p.type in ROUTED and p.promoted and p.state == ProcessState.UP]
        newest = max((p.version for p in serving), default=None)
        return self._endpoints_of([p for p in serving if p.version == newest])

    def apps(self) -> set[str]:
        with self._guard:
            return set(self._procs)

    def fingerprints(self) -> dict[str, str]:
        with self._guard:
            return {app: repr(sorted((p.name, p.state, p.version, p.promoted) for p in procs))
                    for app, procs in self._procs.items()}

    def events(self) -> _Events:
        stream = _Events(self)
        self._streams.add(stream)
        return stream

    def logs(self, app: str, lines: int) -> list[str]:
        with self._guard:
            return self._logs.get(app, [])[-lines:] if lines > 0 else []

    # -- test helpers ---------------------------------------------------------------------------

    def kill(self, app: str, name: str, exit_code: int = 1) -> None:
        """Make process `name` die with `exit_code` (crashed, or down for 0 and 143)."""
        with self._guard:
            for proc in self._procs.get(app, []):
                if proc.name == name:
                    proc.state = ProcessState.DOWN if exit_code in (0, 143) else ProcessState.CRASHED
                    proc.exit_code = exit_code
                    proc.last_exit = {"at": _iso(time.time()), "reason": "exited", "exit_code": exit_code}
                    self._log(app, proc.tag, f"exited with code {exit_code}")
        self._notify(app)
