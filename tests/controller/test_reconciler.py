"""The reconciler's logic against a stand-in engine and router: apps destroyed during a pass, routes
kept while replacements boot, the work queue, and what a worker does when the app is busy."""

import threading
import time
from types import SimpleNamespace

import pytest

from deis.controller.api import follower, runtime
from deis.controller.api.models import App
from deis.router import Route
from deis.scheduler import Endpoint, Scheduler, new_report
from deis.scheduler import LockBusy


class StandInRouter:
    def __init__(self):
        self.served: dict[str, Route] = {}

    def routes(self):
        return dict(self.served)

    def update(self, changes, only_if_changed=False, **_):
        for app, route in changes.items():
            if route is None:
                self.served.pop(app, None)
            else:
                self.served[app] = route
        return SimpleNamespace(rejected={}, unconfirmed=False, warnings=[])

    def running(self):
        return True


class StandInEngine(Scheduler):
    """Knows apps by name; `serving` and `booting` say what each app's web processes do."""

    name = "stand-in"

    def __init__(self):
        self.engine_apps: set[str] = set()
        self.serving: dict[str, list[Endpoint]] = {}
        self.booting_names: dict[str, list[str]] = {}
        self.converged: list[tuple[str, object]] = []
        self.on_reconcile = None
        self.busy: set[str] = set()

    def locked(self, app, blocking=True):
        if app in self.busy and not blocking:
            raise LockBusy(f"{app} is being changed")
        return super().locked(app)

    def apps(self):
        return set(self.engine_apps)

    def converge(self, request):
        self.engine_apps.add(request.spec.app)
        self.reconcile_app(request.spec, request.structure)

    def reconcile_app(self, spec, structure, app=None, switch=None):
        name = spec.app if spec is not None else app
        self.converged.append((name, spec))
        if self.on_reconcile:
            self.on_reconcile(name)
        return new_report()

    def endpoints(self, app):
        return list(self.serving.get(app, []))

    def booting(self, app):
        return list(self.booting_names.get(app, []))


@pytest.fixture
def engine(monkeypatch, db):
    engine, routed = StandInEngine(), StandInRouter()
    monkeypatch.setattr(runtime, "get_scheduler", lambda: engine)
    monkeypatch.setattr(follower, "get_scheduler", lambda: engine)
    monkeypatch.setattr(runtime, "router", lambda: routed)
    engine.routed = routed
    return engine


def endpoint(app, num, address):
    return Endpoint(app=app, type="web", num=num, address=address, port=5000)


def build(client, app):
    assert client.post(f"/v1/apps/{app}/builds", {"image": "example/web:1"}).status_code == 201


def test_an_app_the_database_no_longer_has_loses_its_processes_and_route(engine):
    engine.routed.served["ghost"] = Route(app="ghost", hosts=["ghost.localhost"], upstreams=[("10.224.9.2", 5000)])
    runtime.reconcile_app("ghost")
    assert engine.converged == [("ghost", None)]
    assert "ghost" not in engine.routed.served


def test_an_app_destroyed_during_a_pass_does_not_stop_the_pass(engine, alice):
    for name in ("aaa-first", "bbb-second", "ccc-third"):
        assert alice.post("/v1/apps", {"id": name}).status_code == 201
        build(alice, name)

    def destroy_the_next(name):
        if name == "aaa-first":
            App.objects.filter(id="bbb-second").delete()

    engine.on_reconcile = destroy_the_next
    report = runtime.reconcile(workers=1)
    assert report["errors"] == {}
    assert [name for name, _ in engine.converged] == ["aaa-first", "bbb-second", "ccc-third"]
    assert [spec for name, spec in engine.converged if name == "bbb-second"] == [None]


def test_the_route_keeps_its_upstreams_while_replacements_boot(engine, alice, app):
    build(alice, app)
    engine.serving[app] = [endpoint(app, 1, "10.224.3.2")]
    runtime.reconcile_app(app)
    assert engine.routed.served[app].upstreams == [("10.224.3.2", 5000)]

    engine.serving[app] = []  # its process was replaced and the new one does not listen yet
    engine.booting_names[app] = [f"{app}.v2.web.1"]
    report = runtime.reconcile_app(app)
    assert report["booting"] == [f"{app}.v2.web.1"]
    assert engine.routed.served[app].upstreams == [("10.224.3.2", 5000)]

    engine.booting_names[app] = []
    engine.serving[app] = [endpoint(app, 1, "10.224.3.3")]
    assert runtime.reconcile_app(app)["booting"] == []
    assert engine.routed.served[app].upstreams == [("10.224.3.3", 5000)]

    engine.serving[app] = []  # scaled to nothing: nothing boots, the route empties (503)
    runtime.reconcile_app(app)
    assert engine.routed.served[app].upstreams == []


def test_a_worker_looks_again_soon_at_a_busy_or_booting_app_and_backs_off_a_failing_one(engine, alice, app):
    build(alice, app)
    reconciler = follower.Reconciler(interval=10, workers=1)
    engine.busy.add(app)
    assert reconciler.sync(app) == follower.BUSY_RECHECK
    engine.busy.clear()
    engine.booting_names[app] = ["x"]
    assert [reconciler.sync(app) for _ in range(7)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]
    engine.booting_names[app] = []
    assert reconciler.sync(app) is None

    def broken(name):
        raise RuntimeError("the engine is on fire")

    engine.on_reconcile = broken
    assert [reconciler.sync(app) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_recorded_change_goes_before_a_resync_of_every_other_app():
    """500 apps queued by a resync must not delay the app a user just changed."""
    queue = follower.WorkQueue()
    for i in range(500):
        queue.add(f"resync-{i}")
    queue.add("resync-7", urgent=True)  # queued already: moved to the front
    queue.add("changed", urgent=True)
    assert [queue.get(timeout=0.1), queue.get(timeout=0.1)] == ["resync-7", "changed"]
    assert queue.get(timeout=0.1) == "resync-0"
    queue.add("changed", urgent=True)
    queue.done("changed")
    queue.add("changed", delay=5)  # a background recheck never delays an urgent entry
    assert queue.get(timeout=0.1) == "changed"
    assert len(queue) == 498  # resync-0 and resync-7 were handed out
    # Urgent while a worker is on it: urgent again once the worker is done.
    queue.add("resync-1", urgent=True)
    assert queue.get(timeout=0.1) == "resync-1"
    queue.add("resync-1", urgent=True)
    queue.done("resync-1")
    queue.add("late", urgent=True)
    assert [queue.get(timeout=0.1), queue.get(timeout=0.1)] == ["resync-1", "late"]


def test_the_work_queue_holds_an_app_once_and_never_gives_it_to_two_workers():
    queue = follower.WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b", delay=0.3)
    assert len(queue) == 2
    assert queue.get(timeout=0.1) == "a"
    queue.add("a")  # changed again while a worker is on it
    assert queue.get(timeout=0.05) is None  # not handed out twice; b not due yet
    queue.done("a")
    assert queue.get(timeout=0.1) == "a"  # looked at once more
    queue.done("a")
    started = time.monotonic()
    assert queue.get(timeout=1) == "b" and time.monotonic() - started >= 0.15
    queue.done("b")
    queue.add("c", delay=5)
    queue.add("c")  # an earlier due time wins
    assert queue.get(timeout=0.1) == "c"
    queue.done("c")

    got = []
    threading.Thread(target=lambda: got.append(queue.get(timeout=5))).start()
    time.sleep(0.05)
    queue.close()
    deadline = time.monotonic() + 2
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [None]


def test_resyncs_look_at_each_unchanged_app_in_turn_never_all_at_once(engine, alice, monkeypatch):
    """Nothing changes: each resync after the first looks at one SWEEP_EVERY-th of the apps, and
    SWEEP_EVERY resyncs in a row look at each app once (every app at once in one resync made
    every rollout of the next seconds twice as slow at 500 apps)."""
    names = [f"sweep{i}" for i in range(6)]
    for name in names:
        assert alice.post("/v1/apps", {"id": name}).status_code == 201
    engine.fingerprints = lambda: {name: "same" for name in names}
    reconciler = follower.Reconciler(interval=10, workers=1, run_jobs=False)
    monkeypatch.setattr(follower, "SWEEP_EVERY", 3)
    from django.db import connections
    monkeypatch.setattr(connections["default"], "close", lambda: None)

    def queued():
        taken = []
        while (app := reconciler.queue.get(timeout=0.05)) is not None:
            taken.append(app)
            reconciler.sync(app)
            reconciler.queue.done(app)
        return sorted(a for a in taken if a in names)

    reconciler.resync()  # the first: every app
    assert queued() == sorted(names)
    for _ in range(3):  # settle what the first looks changed
        reconciler.resync()
        queued()
    looked = []
    for _ in range(3):
        reconciler.resync()
        slice_ = queued()
        assert len(slice_) == 2, slice_  # 6 apps, one in 3 of them a resync
        looked += slice_
    assert sorted(looked) == sorted(names)  # each once


def test_a_resync_leaves_alone_the_apps_in_which_nothing_changed(engine, alice, monkeypatch):
    """At 500 apps a look at each every interval kept the deployer busy: a resync looks at an app
    only when the engine's fingerprint, the database or its route changed, or its last look did not
    go well; the first resync, and one asked to be full, look at all."""
    names = ["aaa-calm", "bbb-calm", "ccc-moved"]
    for name in names:
        assert alice.post("/v1/apps", {"id": name}).status_code == 201
        build(alice, name)
    prints = {name: "same" for name in names}
    engine.fingerprints = lambda: dict(prints)
    reconciler = follower.Reconciler(interval=10, workers=1, run_jobs=False)
    monkeypatch.setattr(follower, "SWEEP_EVERY", 0)  # no app looked at in turn (the test below)
    # A resync closes its thread's connection (the deployer's threads); here it is the test's own.
    from django.db import connections
    monkeypatch.setattr(connections["default"], "close", lambda: None)

    def queued():
        taken = []
        while (app := reconciler.queue.get(timeout=0.05)) is not None:
            taken.append(app)
            assert reconciler.sync(app) in (None, follower.BUSY_RECHECK)  # BUSY: the engine's lock is held
            reconciler.queue.done(app)
        return sorted(taken)

    def settled():
        """Resyncs until one looks at nothing (a look that changes the database, a rollout
        finished, is looked at once more), bounded."""
        for _ in range(3):
            reconciler.resync()
            if not queued():
                return True
        return False

    reconciler.resync()  # the first: every app
    assert queued() == names
    assert settled()
    reconciler.resync()
    assert queued() == []  # nothing changed anywhere
    prints["ccc-moved"] = "a process died"
    reconciler.resync()
    assert queued() == ["ccc-moved"]
    assert settled()
    assert alice.post("/v1/apps/bbb-calm/config", {"values": {"X": "1"}}).status_code == 201
    reconciler.resync()
    assert queued() == ["bbb-calm"]
    assert settled()
    engine.busy.add("aaa-calm")  # a look that could not be taken is taken at the next resync
    prints["aaa-calm"] = "changed"
    reconciler.resync()
    assert queued() == ["aaa-calm"]  # (busy: sync answered LockBusy)
    engine.busy.discard("aaa-calm")
    reconciler.resync()
    assert queued() == ["aaa-calm"]
    assert settled()
    reconciler.resync(full=True)
    assert queued() == names
