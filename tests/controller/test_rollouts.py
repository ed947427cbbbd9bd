"""Rollouts recorded by the API and run by the deployer, against the in-memory engine: answers at
once with the release's state, failures never replace what runs, superseded releases, scale and
restart on the same path, leases, a rollout cut by a crash, one-offs as jobs, bounded checks."""

import os
import time

import pytest

from deis.controller.api import follower, jobs, rollouts, runtime
from deis.controller.api.models import App, Job, Release, Rollout
from deis.scheduler.fake import FakeScheduler
from tests.controller.test_reconciler import StandInRouter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine(settings, monkeypatch):
    settings.SCHEDULER_BACKEND = "fake"
    engine = FakeScheduler.shared()
    engine.reset()
    routed = StandInRouter()
    monkeypatch.setattr(runtime, "router", lambda: routed)
    engine.routed = routed
    yield engine
    engine.reset()


def deployed(app):
    """What the deployer does with the app once (as a worker would)."""
    return runtime.reconcile_app(app)


def release(client, app, version):
    return client.get(f"/v1/apps/{app}/releases/v{version}").json()


def rollout(client, app):
    return client.get(f"/v1/apps/{app}/rollout").json()


def running(engine, app):
    return sorted((p.type, p.num, p.release) for p in engine.processes(app) if p.state != "down")


def build(client, app, procfile=None):
    answer = client.post(f"/v1/apps/{app}/builds", {"image": "example/web:1", "procfile": procfile or {"web": "serve"}})
    assert answer.status_code == 201, answer.content
    return answer


def test_a_change_is_recorded_and_answered_at_once_then_rolled_out_by_the_deployer(engine, alice, app):
    answer = build(alice, app)
    assert answer["Deis-Release"] == "2" and answer["Deis-Rollout"] == "1"
    assert release(alice, app, 2)["state"] == "pending"  # the request ran nothing
    assert engine.processes(app) == []
    assert rollout(alice, app)["phase"] == "pending" and rollout(alice, app)["observed"] == 0

    report = deployed(app)
    assert report["deployed"] == [app]
    assert release(alice, app, 2)["state"] == "deployed"
    assert running(engine, app) == [("web", 1, "v2")]
    state = rollout(alice, app)
    assert state["phase"] == "deployed" and state["observed"] == 1 and state["release"] == 2
    assert [text for _, text in state["steps"]][0].startswith("starting web.1 of v2")
    assert engine.routed.served[app].upstreams  # routed to it

    assert deployed(app)["deployed"] == []  # level-triggered: nothing more to do


def test_a_release_that_never_becomes_healthy_is_failed_and_the_old_one_keeps_running(engine, alice, app):
    build(alice, app)
    deployed(app)
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"FAKE_WEB": "crash"}})
    assert answer.status_code == 201 and answer["Deis-Release"] == "3"
    report = deployed(app)
    assert "v3 did not become healthy" in report["errors"][app]
    v3 = release(alice, app, 3)
    assert v3["state"] == "failed" and v3["failed"] is True and "exited with code 1" in v3["failure"]
    state = rollout(alice, app)
    assert state["phase"] == "failed" and "v3 did not become healthy" in state["error"]
    assert running(engine, app) == [("web", 1, "v2")]
    assert deployed(app)["errors"] == {}  # the failure is final: no retry loop
    assert running(engine, app) == [("web", 1, "v2")]


def test_a_hung_web_process_is_refused(engine, alice, app):
    build(alice, app)
    deployed(app)
    alice.post(f"/v1/apps/{app}/config", {"values": {"FAKE_WEB": "hang", "HEALTHCHECK_TIMEOUT": "0.2"}})
    assert "did not answer GET /" in deployed(app)["errors"][app]
    assert release(alice, app, 3)["state"] == "failed"
    assert running(engine, app) == [("web", 1, "v2")]


def test_releases_made_before_the_deployer_got_to_them_are_superseded(engine, alice, app):
    build(alice, app)
    for value in ("1", "2", "3"):
        alice.post(f"/v1/apps/{app}/config", {"values": {"N": value}})
    deployed(app)
    states = {r["version"]: r["state"] for r in alice.get(f"/v1/apps/{app}/releases").json()["results"]}
    assert states == {5: "deployed", 4: "superseded", 3: "superseded", 2: "superseded", 1: "deployed"}
    assert running(engine, app) == [("web", 1, "v5")]
    # A superseded release ran nothing wrong: it can be rolled back to.
    assert alice.post(f"/v1/apps/{app}/releases/rollback", {"version": 3}).status_code == 201


def test_scale_is_a_rollout_and_a_failed_scale_goes_back_to_what_ran(engine, alice, app):
    build(alice, app, {"web": "serve", "worker": "work"})
    deployed(app)
    alice.post(f"/v1/apps/{app}/config", {"values": {"FAKE_WORKER": "crash"}})
    deployed(app)
    answer = alice.post(f"/v1/apps/{app}/scale", {"web": 2})
    assert answer.status_code == 204 and answer["Deis-Rollout"]
    assert alice.get(f"/v1/apps/{app}").json()["structure"] == {"web": 2, "worker": 0}  # desired, at once
    deployed(app)
    assert running(engine, app) == [("web", 1, "v3"), ("web", 2, "v3")]

    alice.post(f"/v1/apps/{app}/scale", {"worker": 1})
    report = deployed(app)
    assert "worker=1" in report["errors"][app] and "back to" in report["errors"][app]
    assert alice.get(f"/v1/apps/{app}").json()["structure"] == {"web": 2, "worker": 0}
    assert release(alice, app, 3)["state"] == "deployed"  # the release itself still runs
    assert rollout(alice, app)["phase"] == "failed"
    assert running(engine, app) == [("web", 1, "v3"), ("web", 2, "v3")]


def test_restart_replaces_processes_through_a_rollout_and_refuses_what_does_not_exist(engine, alice, app):
    build(alice, app, {"web": "serve", "worker": "work"})
    alice.post(f"/v1/apps/{app}/scale", {"web": 2, "worker": 1})
    deployed(app)
    before = {(p.type, p.num): p.id for p in engine.processes(app)}
    assert alice.post(f"/v1/apps/{app}/containers/web/9/restart").status_code == 404
    assert alice.post(f"/v1/apps/{app}/containers/clock/restart").status_code == 404
    answer = alice.post(f"/v1/apps/{app}/containers/web/restart")
    assert answer.status_code == 200 and answer["Deis-Rollout"]
    assert sorted((p["type"], p["num"]) for p in answer.json()) == [("web", 1), ("web", 2)]
    assert {(p.type, p.num): p.id for p in engine.processes(app)} == before  # nothing restarted yet
    deployed(app)
    after = {(p.type, p.num): p.id for p in engine.processes(app)}
    assert set(after) == set(before)
    assert after[("worker", 1)] == before[("worker", 1)]
    assert after[("web", 1)] != before[("web", 1)] and after[("web", 2)] != before[("web", 2)]
    assert deployed(app)["deployed"] == []  # done once: a resync restarts nothing again
    assert {(p.type, p.num): p.id for p in engine.processes(app)} == after


def test_healthcheck_values_out_of_bounds_are_refused(engine, alice, app):
    for key, value in [("HEALTHCHECK_INITIAL_DELAY", "1e400"), ("HEALTHCHECK_INITIAL_DELAY", "301"),
                       ("HEALTHCHECK_TIMEOUT", "0"), ("HEALTHCHECK_TIMEOUT", "nan"), ("HEALTHCHECK_TIMEOUT", "-1"),
                       ("HEALTHCHECK_URL", "health check"), ("HEALTHCHECK_URL", "ftp://x/")]:
        answer = alice.post(f"/v1/apps/{app}/config", {"values": {key: value}})
        assert answer.status_code == 400, (key, value)
        assert key in answer.json()["values"][0]
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {
        "HEALTHCHECK_INITIAL_DELAY": "5", "HEALTHCHECK_TIMEOUT": "2.5", "HEALTHCHECK_URL": "/health"}})
    assert answer.status_code == 201
    assert Release.objects.filter(app__id=app).count() == 2  # nothing recorded for the refused ones


def test_one_worker_holds_an_app_and_a_dead_workers_lease_is_taken_over(engine, alice, app):
    build(alice, app)
    assert rollouts.claim(app, "host-a/1")
    assert not rollouts.claim(app, "host-b/2")  # held: another host's worker waits
    rollouts.unclaim(app, "host-a/1")
    assert rollouts.claim(app, "host-b/2")
    Rollout.objects.filter(app_id=app).update(lease_expires=rollouts.now() - rollouts.timedelta(seconds=1))
    assert rollouts.claim(app, "host-a/1")  # expired: free

    # A deployer of this host that died (no such pid) mid-rollout: its successor takes over at once.
    me = rollouts.worker_id()
    host = me.partition("/")[0]
    Rollout.objects.filter(app_id=app).update(lease_owner=f"{host}/999999999",
                                              lease_expires=rollouts.now() + rollouts.timedelta(seconds=60))
    Release.objects.filter(app__id=app, version=2).update(state="deploying")
    with pytest.raises(runtime.LockBusy):
        deployed(app)
    assert rollouts.take_over_from_predecessors(me) == 1
    assert deployed(app)["deployed"] == [app]
    assert release(alice, app, 2)["state"] == "deployed"


def test_a_rollout_cut_short_is_finished_by_the_next_worker(engine, alice, app):
    """The engine started v3's processes and the worker died before the switch: v2 serves, v3's
    processes exist unpromoted; the next pass finishes the rollout (or the engine's convergence
    replaces what it finds)."""
    build(alice, app)
    deployed(app)
    alice.post(f"/v1/apps/{app}/config", {"values": {"A": "1"}})
    Rollout.objects.filter(app_id=app).update(phase="starting")
    Release.objects.filter(app__id=app, version=3).update(state="deploying")
    deployed(app)
    assert running(engine, app) == [("web", 1, "v3")]
    assert release(alice, app, 3)["state"] == "deployed" and rollout(alice, app)["phase"] == "deployed"


def test_the_worker_loop_takes_recorded_changes_from_the_database(engine, alice, app):
    build(alice, app)
    assert rollouts.due_apps() == [app]
    deployer = follower.Reconciler(interval=10, workers=1, run_jobs=False)
    assert deployer.sync(app) is None
    assert rollouts.due_apps() == []
    assert release(alice, app, 2)["state"] == "deployed"


def test_one_offs_are_jobs_with_streamed_capped_output_and_a_limit_per_user(engine, alice, app, settings):
    build(alice, app)
    deployed(app)
    answer = alice.post(f"/v1/apps/{app}/jobs", {"command": "echo hi"})
    assert answer.status_code == 201 and answer.json()["state"] == "pending"
    job_id = answer.json()["uuid"]
    runner = jobs.JobRunner(rollouts.worker_id(), workers=2)
    runner.poll()
    deadline = time.monotonic() + 10
    while Job.objects.get(pk=job_id).state in jobs.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.05)
    got = alice.get(f"/v1/apps/{app}/jobs/{job_id}").json()
    assert got["state"] == "succeeded" and got["exit_code"] == 0 and got["output"] == "output of echo hi\n"
    later = alice.get(f"/v1/apps/{app}/jobs/{job_id}?offset={got['offset']}").json()
    assert later["output"] == "" and later["offset"] == got["offset"]

    settings.JOBS_PER_USER = 2
    for _ in range(2):
        assert alice.post(f"/v1/apps/{app}/jobs", {"command": "sleep 1"}).status_code == 201
    refused = alice.post(f"/v1/apps/{app}/jobs", {"command": "sleep 1"})
    assert refused.status_code == 429 and "limit" in refused.json()["detail"]
    runner.close()

    job = Job.objects.get(pk=job_id)
    job.output, job.output_dropped = "b" * 10, 1000  # 1000 bytes were cut before the newest 10
    assert jobs.output_from(job, 0) == ("b" * 10, 1010)
    assert jobs.output_from(job, 1005) == ("b" * 5, 1010)


def test_a_destroyed_app_is_gone_at_once_and_its_processes_after(engine, alice, app):
    build(alice, app)
    deployed(app)
    assert alice.delete(f"/v1/apps/{app}").status_code == 204
    assert not App.objects.filter(id=app).exists()
    assert running(engine, app) != []  # the request removed nothing itself
    assert alice.post("/v1/apps", {"id": app}).status_code == 409  # its name, once it is cleared
    deployed(app)
    assert engine.processes(app) == [] and app not in engine.apps()
    assert not Rollout.objects.filter(app_id=app).exists()
    assert alice.post("/v1/apps", {"id": app}).status_code == 201


def test_without_a_runtime_changes_are_recorded_and_nothing_waits(settings, alice, app):
    settings.SCHEDULER_BACKEND = "none"
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"A": "1"}})
    assert answer.status_code == 201 and "Deis-Rollout" not in answer
    assert alice.post(f"/v1/apps/{app}/containers/restart").status_code == 503
    assert os.environ.get("DEIS_SCHEDULER", "none") == "none"
