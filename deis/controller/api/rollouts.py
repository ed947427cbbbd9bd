"""Rollouts in the database: the API records what should run and queues the app; the deployer's
workers take the app, roll it out, and write back how far it got.

The API's side: `record` (in the same breath as the release, scale, restart or destroy it
follows) bumps the app's `Rollout.generation` and `wake`s the deployer; nothing waits on
containers. The deployer's side: `claim` the app's lease (one conditional UPDATE: atomic on SQLite
and PostgreSQL alike, so workers on several hosts never roll one app out twice), keep it alive with
a `Lease` heartbeat, write each step (`progress`), then `finish` or `fail`. A worker killed at any
moment leaves a lease that expires (or that its successor on the same host takes over at once)
and a rollout whose generation was never observed: the next worker converges it again, and the
engine's convergence is idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import nudges
from .models import Release, Rollout
from .releases import write_transaction

log = logging.getLogger("deis.deployer")

LEASE_SECONDS = 20.0  # a lease not renewed for this long is free (its worker died)
STEPS_KEPT = 50
WAKE_SOCKET = "deployer.sock"  # in DATA_DIR: the API's nudge that an app was queued


def worker_id() -> str:
    """Who holds a lease: host and process, so a restarted deployer knows its predecessor's."""
    return f"{socket.gethostname()}/{os.getpid()}"


def now():
    return timezone.now()


# -- the API's side ----------------------------------------------------------------------------

def record(app_id: str, *, restart: dict | None = None, revert_structure: dict | None = None,
           destroyed: bool = False, images: list[str] | tuple = ()) -> int:
    """A change of what should run for `app_id`: a new generation to roll out (and what it must
    do besides converging). Returns the generation, which the client waits for."""
    with write_transaction():
        rollout, _ = Rollout.objects.select_for_update().get_or_create(app_id=app_id)
        rollout.generation += 1
        rollout.phase = "pending"
        rollout.due = None
        rollout.attempts = 0
        if restart is not None:
            rollout.restart = _merged_restart(rollout.restart, restart)
        if revert_structure is not None and rollout.revert_structure is None:
            rollout.revert_structure = revert_structure  # what ran before the first unfinished scale
        if destroyed:
            rollout.destroyed, rollout.images = True, sorted(set(rollout.images) | set(images))
        rollout.save()
        generation = rollout.generation
    wake(app_id)
    return generation


def _merged_restart(pending: dict | None, new: dict) -> dict:
    """Two restarts not yet rolled out: one covering both, up to the later time."""
    if not pending:
        return new
    if (pending.get("type"), pending.get("num")) == (new.get("type"), new.get("num")):
        return new
    same_type = pending.get("type") == new.get("type")
    return {"type": new.get("type") if same_type else None, "num": None, "before": new["before"]}


def wake(app_id: str) -> None:
    """Nudge the deployer on this host (best effort: its resync finds the app anyway)."""
    nudges.send(str(settings.DATA_DIR / WAKE_SOCKET), app_id)


def tearing_down(app_id: str) -> bool:
    """A destroyed app of this name whose processes the deployer has not removed yet."""
    return Rollout.objects.filter(app_id=app_id, destroyed=True).exists()


def as_json(rollout: Rollout | None, app_id: str) -> dict:
    if rollout is None:
        return {"app": app_id, "generation": 0, "observed": 0, "phase": "deployed", "release": None,
                "error": "", "steps": [], "started": None, "finished": None, "done": True}
    stamp = (lambda t: t.isoformat() if t else None)
    return {"app": app_id, "generation": rollout.generation, "observed": rollout.observed,
            "phase": rollout.phase, "release": rollout.release, "error": rollout.error,
            "steps": rollout.steps, "attempts": rollout.attempts, "started": stamp(rollout.started),
            "finished": stamp(rollout.finished), "done": rollout.done}


# -- the deployer's side -----------------------------------------------------------------------

def due_apps() -> list[str]:
    """Apps with a generation not yet observed whose backoff is over."""
    return list(Rollout.objects.filter(observed__lt=F("generation")).filter(Q(due__isnull=True) | Q(due__lte=now()))
                .values_list("app_id", flat=True))


def claim(app_id: str, owner: str) -> bool:
    """Take the app's lease if nobody else holds a live one (a row is made for apps that have
    none yet: apps from before rollouts were recorded)."""
    expires = now() + timedelta(seconds=LEASE_SECONDS)
    free = Q(lease_expires__isnull=True) | Q(lease_expires__lt=now()) | Q(lease_owner=owner) | Q(lease_owner="")
    with write_transaction():
        if Rollout.objects.filter(app_id=app_id).filter(free).update(lease_owner=owner, lease_expires=expires):
            return True
        if Rollout.objects.filter(app_id=app_id).exists():
            return False
        Rollout.objects.create(app_id=app_id, phase="deployed", lease_owner=owner, lease_expires=expires)
        return True


def unclaim(app_id: str, owner: str) -> None:
    with write_transaction():
        Rollout.objects.filter(app_id=app_id, lease_owner=owner).update(lease_owner="", lease_expires=None)


def take_over_from_predecessors(owner: str) -> int:
    """At start: leases of this host's deployers that are dead (a SIGKILL, a reboot) are ours at
    once, rather than after they expire. Returns how many."""
    host, _, pid = owner.partition("/")
    dead = []
    for other in Rollout.objects.filter(lease_owner__startswith=f"{host}/").exclude(lease_owner=owner) \
            .values_list("lease_owner", flat=True).distinct():
        other_pid = other.partition("/")[2]
        if other_pid.isdigit() and not _alive(int(other_pid)):
            dead.append(other)
    if not dead:
        return 0
    with write_transaction():
        return Rollout.objects.filter(lease_owner__in=dead).update(lease_owner="", lease_expires=None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """Renews the app's lease every third of its term while a rollout runs (a thread of its own)."""

    def __init__(self, app_id: str, owner: str):
        self.app_id, self.owner = app_id, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{app_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        unclaim(self.app_id, self.owner)

    def _renew(self):
        from django import db

        try:
            while not self._stop.wait(LEASE_SECONDS / 3):
                try:
                    with write_transaction():
                        kept = Rollout.objects.filter(app_id=self.app_id, lease_owner=self.owner).update(
                            lease_expires=now() + timedelta(seconds=LEASE_SECONDS))
                    if not kept:
                        log.error("%s: the lease was lost during a rollout", self.app_id)
                except Exception:  # noqa: BLE001 - the next renewal tries again
                    log.exception("%s: renewing the lease failed", self.app_id)
        finally:
            db.connection.close()


def begin(app_id: str, release: Release) -> None:
    """A rollout of `release` starts: its state, the app's phase, and older releases that never
    started are superseded by it."""
    with write_transaction():
        Rollout.objects.filter(app_id=app_id).update(phase="starting", release=release.version, error="",
                                                     steps=[], started=now(), finished=None)
        Release.objects.filter(pk=release.pk).exclude(state="deployed").update(state="deploying")
        Release.objects.filter(app_id=release.app_id, version__lt=release.version, state="pending") \
            .update(state="superseded")


def progress(app_id: str, phase: str, message: str) -> None:
    """A step of the rollout: the phase, and a line the CLI and `git push` show."""
    with write_transaction():
        rollout = Rollout.objects.filter(app_id=app_id).first()
        if rollout is None:
            return
        steps = [*rollout.steps, [now().isoformat(), message]][-STEPS_KEPT:]
        Rollout.objects.filter(app_id=app_id).update(phase=phase, steps=steps)


def finish(app_id: str, generation: int, phase: str = "deployed", error: str = "") -> None:
    """The rollout for `generation` is over, deployed or failed: observed, lease kept."""
    with write_transaction():
        rollout = Rollout.objects.filter(app_id=app_id).first()
        if rollout is None:
            return
        rollout.phase, rollout.error, rollout.finished = phase, error, now()
        rollout.observed = max(rollout.observed, generation)
        rollout.attempts, rollout.due = 0, None
        if rollout.observed >= rollout.generation:
            rollout.restart = rollout.revert_structure = None
        rollout.save(update_fields=["phase", "error", "finished", "observed", "attempts", "due", "restart",
                                    "revert_structure", "updated"])


def back_off(app_id: str, error: str, longest: float = 30.0) -> float:
    """The engine could not be asked (it restarts, a database hiccup): try again later, each time
    later, the generation still unobserved. Returns the seconds to wait."""
    with write_transaction():
        rollout = Rollout.objects.filter(app_id=app_id).first()
        if rollout is None:
            return 1.0
        rollout.attempts += 1
        wait = min(longest, 2.0 ** (rollout.attempts - 1))
        rollout.due, rollout.error = now() + timedelta(seconds=wait), error
        rollout.save(update_fields=["attempts", "due", "error", "updated"])
    return wait


def forget(app_id: str) -> None:
    """A destroyed app's processes are gone: its row goes too (the name is free again)."""
    with write_transaction():
        Rollout.objects.filter(app_id=app_id, destroyed=True).delete()
