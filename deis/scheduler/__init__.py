"""The scheduler interface: one class per engine (Docker, later Swarm), the same verbs for all.

The controller decides what should run and hands the engine a `ReleaseSpec` (plain data, no
database objects); a backend makes the engine match it. Until a backend is configured,
`UnavailableScheduler` answers every runtime request with a clear reason (503).
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

    def reconcile_app(self, spec: "ReleaseSpec | None", structure: dict, app: str | None = None,
                      switch: "SwitchRoutes | None" = None) -> dict:
        """Converge one app to `structure` of `spec` (None: nothing should run). Idempotent."""
        return {}

    def deploy(self, spec: ReleaseSpec, structure: dict, switch: SwitchRoutes | None = None) -> None:
        """Run `structure` ({type: count}) of `spec`: start the new processes, wait until they are
        healthy, call `switch`, then stop the old ones. Raise DeployError and leave the old
        processes serving when the new ones never become healthy."""
        raise NotImplementedError

    def scale(self, spec: ReleaseSpec, structure: dict, switch: SwitchRoutes | None = None) -> None:
        raise NotImplementedError

    def restart(self, app: str, proc_type: str | None = None, num: int | None = None) -> list[dict]:
        raise NotImplementedError

    def run(self, spec: ReleaseSpec, command: str, timeout: float | None = None) -> tuple[int, str]:
        """Run a one-off command in a container of `spec`; return (exit code, output)."""
        raise NotImplementedError

    def state(self, app: str) -> list[dict]:
        """The app's processes: [{type, num, state, release}], state one of up, crashed, starting, down."""
        raise NotImplementedError

    def endpoints(self, app: str) -> list[Endpoint]:
        raise NotImplementedError

    def logs(self, app: str, lines: int) -> list[str]:
        raise NotImplementedError

    def destroy(self, app: str, images: list[str] | tuple = ()) -> None:
        """Remove everything the app has in the engine: its containers, and `images` (built for it
        alone) unless something else still uses them."""
        raise NotImplementedError


class UnavailableScheduler(Scheduler):
    """No engine configured: nothing ever ran, so nothing needs destroying; all else is refused."""

    name = "none"
    available = False
    reason = ("No container runtime is configured on this platform yet, so processes cannot be "
              "{what}. Releases and config are recorded and will run once a runtime is available.")

    def _refuse(self, what):
        raise SchedulerUnavailable(self.reason.format(what=what))

    def deploy(self, spec, structure, switch=None):
        # Recording a release is all there is to do without a runtime; scale/run report the gap.
        return None

    def scale(self, spec, structure, switch=None):
        self._refuse("scaled")

    def restart(self, app, proc_type=None, num=None):
        self._refuse("restarted")

    def run(self, spec, command, timeout=None):
        self._refuse("run")

    def state(self, app):
        self._refuse("listed")

    def endpoints(self, app):
        return []

    def logs(self, app, lines):
        self._refuse("read for logs")

    def destroy(self, app, images=()):
        return None


def _docker() -> Scheduler:
    from deis.scheduler.docker import DockerScheduler  # imported only when chosen

    return DockerScheduler()


_BACKENDS = {"none": UnavailableScheduler, "docker": _docker}


def get_scheduler(name: str | None = None) -> Scheduler:
    from django.conf import settings

    name = name or settings.SCHEDULER_BACKEND
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise SchedulerUnavailable(f"Unknown scheduler backend '{name}' (known: {', '.join(_BACKENDS)}).")
