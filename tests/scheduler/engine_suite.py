"""What every engine must do, written only against the Scheduler interface (deis/scheduler).

Not collected itself (no `Test` prefix): a module subclasses `EngineSuite` as `Test<Engine>` and
provides
- the fixture `engine`: the Scheduler under test;
- the fixture `app`: a fresh app name, everything of which is removed after the test whatever
  happened;
- `make_spec(app, version, web="ok" | "crash" | "hang")`: a release with `web` and `worker`
  process types whose web processes serve, exit at once with code 1, or accept connections and
  never answer the health check;
- optionally `serves(engine, endpoint)`: whether the endpoint really answers (the default asks
  the engine whether an up web process has its address).

`run` is given shell commands every engine takes (`echo ...; exit N`, `sleep S`); only the exit
code and that the echoed text is in the output are checked.

Every wait is bounded; the clean-up is the subclass's `app` fixture.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from deis import rules
from deis.scheduler import Convergence, DeployError, LockBusy, Process, ProcessState, Restart
from deis.scheduler.limits import ContainerLimits
from tests.scheduler.test_docker import wait_for


class Recorder:
    """A switch and a progress callback that remember their calls."""

    def __init__(self, engine=None, app=None):
        self.switches, self.phases, self.seen_at_switch = [], [], []
        self.engine, self.app = engine, app

    def switch(self, endpoints, backups):
        self.switches.append((list(endpoints), list(backups)))
        if self.engine is not None:
            self.seen_at_switch.append(self.engine.processes(self.app))

    def progress(self, phase, message):
        assert isinstance(message, str) and message
        self.phases.append(phase)

    def request(self, spec, structure, restart=None):
        return Convergence(spec, structure, self.switch, self.progress, restart)


def keys(processes):
    return [(p.type, p.num) for p in processes]


def ids(processes):
    return {(p.type, p.num): p.id for p in processes}


class EngineSuite:
    def make_spec(self, app, version, web="ok"):
        raise NotImplementedError

    def serves(self, engine, endpoint) -> bool:
        return any(p.address == endpoint.address and p.port == endpoint.port and p.state == ProcessState.UP
                   for p in engine.processes(endpoint.app))

    def all_up(self, engine, app, count):
        """The app's processes once all `count` are up (bounded), for engines that settle."""
        def check():
            procs = engine.processes(app)
            return procs if len(procs) == count and all(p.state == ProcessState.UP for p in procs) else None
        return wait_for(check, 5) or engine.processes(app)

    # -- converge ------------------------------------------------------------------------------

    def test_converge_starts_the_counts_and_endpoints_appear(self, engine, app):
        calls = Recorder()
        engine.converge(calls.request(self.make_spec(app, 1), {"web": 2, "worker": 1}))

        procs = self.all_up(engine, app, 3)
        assert all(isinstance(p, Process) for p in procs)
        assert keys(procs) == [("web", 1), ("web", 2), ("worker", 1)]
        assert {p.release for p in procs} == {"v1"} and {p.state for p in procs} == {ProcessState.UP}
        assert len({p.name for p in procs}) == 3 and len({p.id for p in procs}) == 3
        endpoints = engine.endpoints(app)
        assert [(e.app, e.type, e.num) for e in endpoints] == [(app, "web", 1), (app, "web", 2)]
        web = {(p.num): p for p in procs if p.type == "web"}
        assert [(e.address, e.port) for e in endpoints] == [(web[n].address, web[n].port) for n in (1, 2)]
        assert all(e.address and e.port > 0 for e in endpoints) and len({e.address for e in endpoints}) == 2
        assert all(self.serves(engine, e) for e in endpoints)
        assert calls.switches and calls.switches[-1] == (endpoints, [])
        assert calls.phases[0] == "starting" and "retiring" not in calls.phases
        assert app in engine.apps()
        assert [p["name"] for p in engine.state(app)] == [p.name for p in procs]

    def test_converge_again_changes_nothing(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 2, "worker": 1}))
        before, endpoints = engine.processes(app), engine.endpoints(app)
        again = Recorder()
        engine.converge(again.request(spec, {"web": 2, "worker": 1}))
        after = engine.processes(app)
        assert [(p.name, p.id) for p in after] == [(p.name, p.id) for p in before]
        assert engine.endpoints(app) == endpoints
        assert again.phases == []  # nothing started, nothing stopped
        assert again.switches in ([], [(endpoints, [])])  # at most a re-affirmed route

    def test_crashing_release_fails_and_the_old_one_keeps_serving(self, engine, app):
        engine.converge(Convergence(self.make_spec(app, 1), {"web": 1, "worker": 1}))
        before, endpoints = engine.processes(app), engine.endpoints(app)
        calls = Recorder()
        with pytest.raises(DeployError, match=r"web\.1 exited with code 1"):
            engine.converge(calls.request(self.make_spec(app, 2, web="crash"), {"web": 1, "worker": 1}))
        assert calls.switches == []
        after = engine.processes(app)
        assert [(p.name, p.id, p.release) for p in after] == [(p.name, p.id, p.release) for p in before]
        assert engine.endpoints(app) == endpoints and all(self.serves(engine, e) for e in endpoints)

    def test_release_that_never_answers_fails_and_the_old_one_keeps_serving(self, engine, app):
        engine.converge(Convergence(self.make_spec(app, 1), {"web": 1}))
        before, endpoints = engine.processes(app), engine.endpoints(app)
        with pytest.raises(DeployError, match="did not answer"):
            engine.converge(Convergence(self.make_spec(app, 2, web="hang"), {"web": 1}))
        assert [(p.name, p.id) for p in engine.processes(app)] == [(p.name, p.id) for p in before]
        assert engine.endpoints(app) == endpoints and all(self.serves(engine, e) for e in endpoints)

    def test_new_release_replaces_the_old_after_the_switch(self, engine, app):
        engine.converge(Convergence(self.make_spec(app, 1), {"web": 1, "worker": 1}))
        old = engine.processes(app)
        calls = Recorder(engine, app)
        engine.converge(calls.request(self.make_spec(app, 2), {"web": 2, "worker": 1}))

        assert calls.phases == ["starting", "switching", "retiring"]
        procs = self.all_up(engine, app, 3)
        assert keys(procs) == [("web", 1), ("web", 2), ("worker", 1)] and {p.release for p in procs} == {"v2"}
        assert not {p.id for p in procs} & {p.id for p in old}
        endpoints = engine.endpoints(app)
        assert [e.num for e in endpoints] == [1, 2]
        # The last switch routes to the new web processes alone; every switch names only new ones,
        # made while the old processes still ran.
        assert calls.switches[-1] == (endpoints, [])
        new_addresses = {(p.address, p.port) for p in procs if p.type == "web"}
        for (routed, _backups), seen in zip(calls.switches, calls.seen_at_switch):
            assert {(e.address, e.port) for e in routed} == new_addresses
            assert {p.id for p in old} <= {p.id for p in seen}

    # -- scale and restart ---------------------------------------------------------------------

    def test_scale_up_and_down(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 1}))
        first = ids(engine.processes(app))
        calls = Recorder()
        engine.converge(calls.request(spec, {"web": 3, "worker": 1}))
        procs = engine.processes(app)
        assert keys(procs) == [("web", 1), ("web", 2), ("web", 3), ("worker", 1)]
        assert ids(procs)[("web", 1)] == first[("web", 1)]  # kept, not replaced
        assert [e.num for e in calls.switches[-1][0]] == [1, 2, 3]
        assert [e.num for e in engine.endpoints(app)] == [1, 2, 3]

        calls = Recorder()
        engine.converge(calls.request(spec, {"web": 1, "worker": 0}))
        procs = engine.processes(app)
        assert keys(procs) == [("web", 1)] and procs[0].id == first[("web", 1)]
        assert [e.num for e in engine.endpoints(app)] == [1]
        assert "starting" not in calls.phases and calls.phases[-1] == "retiring"

    def test_restart_replaces_the_web_processes_only(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 2, "worker": 1}))
        before = ids(engine.processes(app))
        restart = Restart(before=time.time(), type="web")
        calls = Recorder()
        engine.converge(calls.request(spec, {"web": 2, "worker": 1}, restart))

        after = ids(self.all_up(engine, app, 3))
        assert sorted(after) == sorted(before)
        assert after[("worker", 1)] == before[("worker", 1)]
        assert after[("web", 1)] != before[("web", 1)] and after[("web", 2)] != before[("web", 2)]
        assert calls.phases == ["starting", "switching", "retiring"]
        web = {(p.address, p.port) for p in engine.processes(app) if p.type == "web"}
        assert {(e.address, e.port) for e in engine.endpoints(app)} == web
        # The same restart asked again (a rollout resumed) replaces nothing more.
        engine.converge(Convergence(spec, {"web": 2, "worker": 1}, restart=restart))
        assert ids(engine.processes(app)) == after

    def test_restart_of_one_process(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 2}))
        before = ids(engine.processes(app))
        engine.converge(Convergence(spec, {"web": 2}, restart=Restart(before=time.time(), type="web", num=2)))
        after = ids(engine.processes(app))
        assert after[("web", 1)] == before[("web", 1)] and after[("web", 2)] != before[("web", 2)]
        assert len(after) == 2

    # -- repair and removal --------------------------------------------------------------------

    def test_reconcile_of_the_running_release_changes_nothing_and_none_removes_everything(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 1, "worker": 1}))
        before = engine.processes(app)
        report = engine.reconcile_app(spec, {"web": 1, "worker": 1})
        assert (report["started"], report["restarted"], report["removed"], report["errors"]) == ([], [], [], {})
        assert [p.id for p in engine.processes(app)] == [p.id for p in before]
        report = engine.reconcile_app(None, {}, app=app)
        assert sorted(report["removed"]) == sorted(p.name for p in before)
        assert engine.processes(app) == [] and engine.endpoints(app) == []

    def test_fingerprints_stay_while_nothing_changes_and_change_with_the_processes(self, engine, app):
        spec = self.make_spec(app, 1)
        engine.converge(Convergence(spec, {"web": 1, "worker": 1}))
        self.all_up(engine, app, 2)
        first = engine.fingerprints()
        assert first is not None and app in first
        assert engine.fingerprints()[app] == first[app]  # looked at again: the same
        engine.reconcile_app(spec, {"web": 1, "worker": 1})
        assert engine.fingerprints()[app] == first[app]  # a repair that changed nothing
        engine.converge(Convergence(spec, {"web": 1, "worker": 2}))
        assert engine.fingerprints()[app] != first[app]
        engine.remove(app)
        assert app not in engine.fingerprints()

    # -- usage ---------------------------------------------------------------------------------

    def test_usage_of_each_running_process(self, engine, app):
        assert engine.usage(app) == []  # nothing runs yet
        spec = dataclasses.replace(self.make_spec(app, 1), memory={"worker": "64M"})
        engine.converge(Convergence(spec, {"web": 2, "worker": 1}))
        procs = self.all_up(engine, app, 3)
        usage = engine.usage(app)
        assert [(u["name"], u["type"], u["num"], u["release"]) for u in usage] == \
            [(p.name, p.type, p.num, p.release) for p in procs]
        for entry in usage:
            assert isinstance(entry["cpu_percent"], float) and entry["cpu_percent"] >= 0
            assert isinstance(entry["memory_bytes"], int) and 0 < entry["memory_bytes"] <= entry["memory_limit_bytes"]
        limits = {(u["type"], u["num"]): u["memory_limit_bytes"] for u in usage}
        assert limits[("worker", 1)] == 64 << 20
        default = rules.memory_bytes(ContainerLimits.from_environment().memory)
        assert limits[("web", 1)] == limits[("web", 2)] == default  # the platform's default
        engine.remove(app)
        assert engine.usage(app) == []

    def test_remove_leaves_nothing(self, engine, app):
        engine.converge(Convergence(self.make_spec(app, 1), {"web": 2, "worker": 1}))
        assert app in engine.apps()
        engine.remove(app)
        assert engine.processes(app) == [] and engine.endpoints(app) == []
        assert app not in engine.apps()
        engine.remove(app)  # again: nothing to do, no error
        assert engine.processes(app) == []

    # -- one-offs ------------------------------------------------------------------------------

    def test_run_returns_the_exit_code_and_output_and_streams_it(self, engine, app):
        pieces = []
        code, output = engine.run(self.make_spec(app, 1), "echo engine-suite-says; exit 3", output=pieces.append)
        assert code == 3
        assert "engine-suite-says" in output and "".join(pieces) == output
        code, output = engine.run(self.make_spec(app, 1), "echo fine")
        assert code == 0 and "fine" in output
        assert engine.processes(app) == []  # a one-off is not a process of the app

    def test_run_times_out(self, engine, app):
        started = time.monotonic()
        code, output = engine.run(self.make_spec(app, 1), "echo started; sleep 30", timeout=1)
        assert code == 124 and "Timed out after 1 s" in output
        assert time.monotonic() - started < 10

    # -- locks and events ----------------------------------------------------------------------

    def test_lock_busy_when_held_by_another_thread(self, engine, app):
        held, release = threading.Event(), threading.Event()

        def hold():
            with engine.locked(app):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        try:
            assert held.wait(5)
            with pytest.raises(LockBusy):
                with engine.locked(app, blocking=False):
                    pass
        finally:
            release.set()
            thread.join(10)
        assert not thread.is_alive()
        with engine.locked(app, blocking=False):
            with engine.locked(app, blocking=False):  # re-entrant in one thread
                pass

    def test_events_name_the_app_and_close_ends_them(self, engine, app):
        stream = engine.events()
        seen, done = [], threading.Event()

        def follow():
            try:
                for name in stream:
                    seen.append(name)
                    if name == app:
                        break
            except Exception:  # noqa: BLE001 - a closed stream may end with an error
                pass
            done.set()

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            engine.converge(Convergence(self.make_spec(app, 1), {"web": 1}))
            assert done.wait(5) and app in seen
        finally:
            stream.close()
            thread.join(5)
        # close() from another thread ends an iteration that is waiting.
        stream = engine.events()
        ended = threading.Event()
        thread = threading.Thread(target=lambda: (list_quietly(stream), ended.set()), daemon=True)
        thread.start()
        time.sleep(0.2)
        stream.close()
        assert ended.wait(5)
        thread.join(5)


def list_quietly(stream):
    try:
        return list(stream)
    except Exception:  # noqa: BLE001
        return None
