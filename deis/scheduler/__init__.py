"""The scheduler interface: one class per engine (Docker, later Swarm), the same verbs for all.

The controller decides what should run and hands the engine a `Convergence` (a `ReleaseSpec`,
plain data with no database objects, and the counts); a backend makes the engine match it. The
verbs are only what engines differ in: `converge` (the health-checked rollout), `reconcile_app`
(the quick repair of what drifted), `remove`, `run`, `processes`, `endpoints`, `booting`, `apps`,
`events`, `logs`, `usage`. Until a backend is configured, `UnavailableScheduler` answers every runtime
request with a clear reason (503). `deis.scheduler.fake.FakeScheduler` is an engine in memory
for the controller's tests; tests/scheduler/engine_suite.py is what every engine must pass.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable


class SchedulerError(Exception):
    """The engine could not do what was asked; the API answers 503 with this message."""


class SchedulerUnavailable(SchedulerError):
    pass


class DeployError(SchedulerError):
    """A new release never became healthy; the old one keeps serving. `logs` are its last lines."""

    def __init__(self, message: str, logs: list[str] | None = None):
        super().__init__(message)
        self.logs = logs or []


class LockBusy(SchedulerError):
    """The app is being changed by someone else (locked(app, blocking=False), or a lease)."""


@dataclass(frozen=True)
class ReleaseSpec:
    """Everything an engine needs to run one release of an app."""

    app: str
    version: int
    image: str
    # Process type -> command (run under `bash -c`). Empty: the image's own CMD, as type `cmd`.
    procfile: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)       # the config values
    memory: dict[str, str] = field(default_factory=dict)    # type -> "512M"
    cpu: dict[str, int] = field(default_factory=dict)       # type -> shares (0-1024)
    tags: dict[str, str] = field(default_factory=dict)
    sha: str = ""
    # A buildpack slug: run through the run image's launcher (/app, .profile.d, PORT 5000).
    buildpack: bool = False

    @property
    def release(self) -> str:
        return f"v{self.version}"

    def process_types(self) -> list[str]:
        return sorted(t for t in self.procfile if t != "release") or ["cmd"]


@dataclass(frozen=True)
class Endpoint:
    """A healthy web process the router may send traffic to."""

    app: str
    type: str
    num: int
    address: str
    port: int


# Called by deploy once the new processes are healthy and before the old ones stop, with the
# endpoints to route to and the backups (the processes serving before, used only should all the
# first fail: while the new ones prove they stay up).
SwitchRoutes = Callable[[list[Endpoint], list[Endpoint]], None]


class ProcessState:
    """What a process is doing, as `deis ps` shows it."""

    UP = "up"              # running and, for web, answering
    STARTING = "starting"  # not yet promoted, or not yet listening / settled
    CRASHED = "crashed"    # exited with an error, or restarting after one
    DOWN = "down"          # stopped on purpose (exit 0 / SIGTERM), created, paused
    ALL = (UP, STARTING, CRASHED, DOWN)


@dataclass(frozen=True)
class Process:
    """One process of an app as the engine reports it."""

    type: str
    num: int | str
    state: str  # a ProcessState value
    release: str
    name: str
    id: str = ""
    started: str | None = None
    restarts: int = 0
    exit_code: int | None = None
    last_exit: dict | None = None  # {"at", "reason": "oom" | "exited", "exit_code"}
    address: str = ""
    port: int = 0

    def as_json(self) -> dict:
        return {"type": self.type, "num": self.num, "state": self.state, "release": self.release,
                "name": self.name, "id": self.id, "started": self.started, "restarts": self.restarts,
                "exit_code": self.exit_code, "last_exit": self.last_exit, "address": self.address,
                "port": self.port}


@dataclass(frozen=True)
class Restart:
    """Replace the processes (all, of `type`, or `type`.`num`) the engine started before `before`
    (a Unix time): the time makes a restart idempotent, so a rollout resumed after a crash
    replaces only what was not replaced yet."""

    before: float
    type: str | None = None
    num: int | None = None

    def covers(self, ptype: str, num: str | int, started: float | None) -> bool:
        return (self.type is None or self.type == ptype) and (self.num is None or str(self.num) == str(num)) \
            and (started is None or started < self.before)


# Called as a rollout moves on: (phase, a line for the person who asked), the phase one of
# starting, switching, retiring.
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class Convergence:
    """What `converge` is asked: run `structure` ({type: count}) of `spec`, health-checked; route
    with `switch`; report steps to `progress`; replace what `restart` covers."""

    spec: ReleaseSpec
    structure: dict
    switch: SwitchRoutes | None = None
    progress: Progress | None = None
    restart: Restart | None = None

    def say(self, phase: str, message: str) -> None:
        if self.progress is not None:
            self.progress(phase, message)


def new_report() -> dict:
    """What a reconcile did: {"started", "restarted", "removed", "booting": [names], "deployed":
    [apps], "errors": {app: reason}}."""
    return {"started": [], "restarted": [], "removed": [], "booting": [], "deployed": [], "errors": {}}


def merge_report(report: dict, more: dict) -> None:
    for key, value in more.items():
        (report[key].update if isinstance(value, dict) else report[key].extend)(value)


class Scheduler:
    """Verbs every backend offers, on whole apps (the controller never talks to containers)."""

    name = "abstract"
    available = True  # False only for the stand-in used while no engine is configured

    @contextmanager
    def locked(self, app: str, blocking: bool = True):
        """Serialise changes to one app (re-entrant); engines without shared state need none.
        `blocking=False`: raise SchedulerError at once when another change holds it."""
        yield

    def events(self):
        """A blocking iterator of app names whose processes the engine started or lost, ending when
        the engine's stream ends; its `close()` stops it. Engines without events yield nothing."""
        return iter(())

    def booting(self, app: str) -> list[str]:
        """Names of the app's serving web processes that run but do not accept connections yet."""
        return []

    def apps(self) -> set[str]:
        """Apps the engine has processes of (the reconciler removes those the controller forgot)."""
        return set()

    def fingerprints(self) -> dict[str, str] | None:
        """{app: a digest of its processes as the engine has them}, in one look at the engine, so a
        resync can leave alone the apps in which nothing changed; None when the engine cannot say
        (every app is then looked at)."""
        return None

    def reconcile_app(self, spec: "ReleaseSpec | None", structure: dict, app: str | None = None,
                      switch: "SwitchRoutes | None" = None) -> dict:
        """Converge one app to `structure` of `spec` (None: nothing should run). Idempotent."""
        return {}

    def converge(self, request: Convergence) -> None:
        """Run `request.structure` of `request.spec`: keep what runs of it already, start the
        missing processes (and replacements of what `request.restart` covers), health-check them,
        switch the routes, then stop everything else. Raise DeployError and leave the processes
        that served before serving when the new ones never become healthy. Idempotent: a
        convergence cut short and asked again finishes the same way."""
        raise NotImplementedError

    def deploy(self, spec: ReleaseSpec, structure: dict, switch: SwitchRoutes | None = None) -> None:
        self.converge(Convergence(spec, structure, switch))

    def run(self, spec: ReleaseSpec, command: str, timeout: float | None = None,
            output: Callable[[str], None] | None = None) -> tuple[int, str]:
        """Run a one-off command in a container of `spec`; return (exit code, output), and hand
        `output` each piece of output as it comes."""
        raise NotImplementedError

    def processes(self, app: str) -> list[Process]:
        raise NotImplementedError

    def state(self, app: str) -> list[dict]:
        """The app's processes as the API shows them."""
        return [p.as_json() for p in self.processes(app)]

    def endpoints(self, app: str) -> list[Endpoint]:
        raise NotImplementedError

    def logs(self, app: str, lines: int) -> list[str]:
        raise NotImplementedError

    def usage(self, app: str) -> list[dict]:
        """What the app's running processes use now, one dict each, sorted by type and num:
        {"name", "type", "num", "release", "cpu_percent" (100.0: one CPU, busy all the time),
        "memory_bytes" (in use, the page cache it could drop left out), "memory_limit_bytes" (None:
        none)}. Engines that cannot tell answer []."""
        return []

    def remove(self, app: str, images: list[str] | tuple = ()) -> None:
        """Remove everything the app has in the engine: its processes, its network, and `images`
        (built for it alone) unless something else still uses them."""
        raise NotImplementedError

    def destroy(self, app: str, images: list[str] | tuple = ()) -> None:
        self.remove(app, images)


class UnavailableScheduler(Scheduler):
    """No engine configured: nothing ever ran, so nothing needs destroying; all else is refused."""

    name = "none"
    available = False
    reason = ("No container runtime is configured on this platform yet, so processes cannot be "
              "{what}. Releases and config are recorded and will run once a runtime is available.")

    def _refuse(self, what):
        raise SchedulerUnavailable(self.reason.format(what=what))

    def converge(self, request):
        self._refuse("started")

    def run(self, spec, command, timeout=None, output=None):
        self._refuse("run")

    def processes(self, app):
        self._refuse("listed")

    def endpoints(self, app):
        return []

    def logs(self, app, lines):
        self._refuse("read for logs")

    def usage(self, app):
        self._refuse("measured")

    def remove(self, app, images=()):
        return None


def _docker() -> Scheduler:
    from deis.scheduler.docker import DockerScheduler  # imported only when chosen

    return DockerScheduler()


def _fake() -> Scheduler:
    from deis.scheduler.fake import FakeScheduler

    return FakeScheduler.shared()


_BACKENDS = {"none": UnavailableScheduler, "docker": _docker, "fake": _fake}


def get_scheduler(name: str | None = None) -> Scheduler:
    from django.conf import settings

    name = name or settings.SCHEDULER_BACKEND
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise SchedulerUnavailable(f"Unknown scheduler backend '{name}' (known: {', '.join(_BACKENDS)}).")
