"""The engine suite against the in-memory FakeScheduler, plus what only the fake offers."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from deis.scheduler import Convergence, DeployError, ProcessState, ReleaseSpec, get_scheduler
from deis.scheduler.fake import FakeScheduler

from .engine_suite import EngineSuite, wait_for


@pytest.fixture
def engine():
    fake = FakeScheduler()
    yield fake
    fake.reset()


@pytest.fixture
def app(engine):
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    engine.remove(name)
    assert name not in engine.apps()


def spec_of(app, version=1, web="ok", **env):
    return ReleaseSpec(app=app, version=version, image="fake/image:1",
                       procfile={"web": "serve", "worker": "work"}, env={"FAKE_WEB": web, **env})


class TestFakeEngine(EngineSuite):
    def make_spec(self, app, version, web="ok"):
        return spec_of(app, version, web)


def test_shared_instance_is_the_backend_and_reset_clears_it(app):
    shared = FakeScheduler.shared()
    assert get_scheduler("fake") is shared is FakeScheduler.shared() and shared.name == "fake"
    shared.converge(Convergence(spec_of(app), {"web": 1}))
    assert app in shared.apps()
    shared.reset()
    assert shared.apps() == set() and shared.processes(app) == []


def test_addresses_ports_and_logs(engine, app):
    engine.converge(Convergence(spec_of(app, PORT="8000"), {"web": 2}))
    procs = engine.processes(app)
    assert all(p.address.startswith("10.99.") and p.port == 8000 for p in procs)
    assert len({p.address for p in procs}) == 2
    assert any(f"{app}[web.1]: started v1 on port 8000" in line for line in engine.logs(app, 10))
    assert len(engine.logs(app, 1)) == 1


def test_delay_shows_starting_while_checked(engine, app):
    errors = []

    def deploy():
        try:
            engine.converge(Convergence(spec_of(app, FAKE_DELAY="0.6"), {"web": 1}))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=deploy)
    thread.start()
    try:
        assert wait_for(lambda: [p.state for p in engine.processes(app)] == [ProcessState.STARTING], 2, 0.01)
        assert engine.endpoints(app) == []
    finally:
        thread.join(10)
    assert errors == [] and time.monotonic() - started >= 0.6
    assert [p.state for p in engine.processes(app)] == [ProcessState.UP]


def test_crashing_worker_fails_the_deploy(engine, app):
    with pytest.raises(DeployError, match=r"worker\.1 exited with code 1") as failure:
        engine.converge(Convergence(spec_of(app, FAKE_WORKER="crash"), {"web": 1, "worker": 1}))
    assert failure.value.logs and engine.processes(app) == []


def test_reconcile_restarts_a_killed_process_and_removes_extras(engine, app):
    spec = spec_of(app)
    engine.converge(Convergence(spec, {"web": 2}))
    engine.kill(app, f"{app}.v1.web.2", 137)
    assert [p.state for p in engine.processes(app)] == [ProcessState.UP, ProcessState.CRASHED]
    report = engine.reconcile_app(spec, {"web": 1, "worker": 1})
    assert report["removed"] == [f"{app}.v1.web.2"] and report["started"] == [f"{app}.v1.worker.1"]
    engine.kill(app, f"{app}.v1.worker.1", 0)
    assert engine.processes(app)[1].state == ProcessState.DOWN
    report = engine.reconcile_app(spec, {"web": 1, "worker": 1})
    assert report["restarted"] == [f"{app}.v1.worker.1"]
    assert [(p.state, p.restarts) for p in engine.processes(app)] == [(ProcessState.UP, 0), (ProcessState.UP, 1)]


def test_reconcile_finishes_a_release_change(engine, app):
    engine.converge(Convergence(spec_of(app, 1), {"web": 1}))
    report = engine.reconcile_app(spec_of(app, 2), {"web": 1})
    assert report["deployed"] == [app] and [p.release for p in engine.processes(app)] == ["v2"]


def test_run_records_and_remove_records_images(engine, app):
    assert engine.run(spec_of(app), "migrate") == (0, "output of migrate\n")
    assert engine.runs == [(app, "v1", "migrate")]
    engine.remove(app, ["img:1"])
    assert engine.removed_images == ["img:1"]
