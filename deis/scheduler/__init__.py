"""The scheduler interface: one class per engine (Docker, later Swarm), the same verbs for all.

The controller decides what should run; a backend makes the engine match it. Until a backend
is configured, `UnavailableScheduler` answers every runtime request with a clear reason (503).
"""

from __future__ import annotations


class SchedulerError(Exception):
    """The engine could not do what was asked; the API answers 503 with this message."""


class SchedulerUnavailable(SchedulerError):
    pass


class Scheduler:
    """Verbs every backend offers, on whole apps (the controller never talks to containers)."""

    name = "abstract"

    def deploy(self, app, release, structure: dict) -> None:
        """Run `structure` ({type: count}) of `release`, replacing what runs now."""
        raise NotImplementedError

    def scale(self, app, release, structure: dict) -> None:
        raise NotImplementedError

    def restart(self, app, proc_type: str | None = None, num: int | None = None) -> list[dict]:
        raise NotImplementedError

    def run(self, app, release, command: str) -> tuple[int, str]:
        """Run a one-off command in a container of `release`; return (exit code, output)."""
        raise NotImplementedError

    def state(self, app) -> list[dict]:
        """The app's processes: [{type, num, state, release}], state one of up, crashed, starting, down."""
        raise NotImplementedError

    def logs(self, app, lines: int) -> list[str]:
        raise NotImplementedError

    def destroy(self, app) -> None:
        """Remove everything the app has in the engine (containers, networks, images)."""
        raise NotImplementedError


class UnavailableScheduler(Scheduler):
    """No engine configured: nothing ever ran, so nothing needs destroying; all else is refused."""

    name = "none"
    reason = ("No container runtime is configured on this platform yet, so processes cannot be "
              "{what}. Releases and config are recorded and will run once a runtime is available.")

    def _refuse(self, what):
        raise SchedulerUnavailable(self.reason.format(what=what))

    def deploy(self, app, release, structure):
        # Recording a release is all there is to do without a runtime; scale/run report the gap.
        return None

    def scale(self, app, release, structure):
        self._refuse("scaled")

    def restart(self, app, proc_type=None, num=None):
        self._refuse("restarted")

    def run(self, app, release, command):
        self._refuse("run")

    def state(self, app):
        self._refuse("listed")

    def logs(self, app, lines):
        self._refuse("read for logs")

    def destroy(self, app):
        return None


_BACKENDS = {"none": UnavailableScheduler}


def get_scheduler(name: str | None = None) -> Scheduler:
    from django.conf import settings

    name = name or settings.SCHEDULER_BACKEND
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise SchedulerUnavailable(f"Unknown scheduler backend '{name}' (known: {', '.join(_BACKENDS)}).")
