"""The Docker backend against a real Docker Engine (busybox test image, unique apps per test)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import threading
import time

import pytest

from deis.scheduler import DeployError, ReleaseSpec, get_scheduler
from deis.scheduler.docker import DockerScheduler, memory_limit

from .conftest import WEB


def containers(client, namespace, app, **labels):
    filters = [f"{namespace}.managed=1", f"{namespace}.app={app}"]
    filters += [f"{namespace}.{k}={v}" for k, v in labels.items()]
    return sorted(client.containers.list(all=True, filters={"label": filters}, ignore_removed=True), key=lambda c: c.name)


def names(client, namespace, app):
    return [c.name for c in containers(client, namespace, app)]


def get(address, port, path="/", timeout=2.0):
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def wait_for(predicate, timeout=10.0, interval=0.1):
    """`predicate()` once it is truthy, or its last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def env_of(container) -> dict:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


# -- pure helpers ----------------------------------------------------------------------------------

def test_memory_limits_in_docker_form():
    assert memory_limit("512M") == "512m"
    assert memory_limit("1G") == "1g"
    assert memory_limit("512MB") == "512m"
    assert memory_limit("64kb") == "64k"
    assert memory_limit(None) is None


def test_registered_and_lazy():
    scheduler = get_scheduler("docker")
    assert isinstance(scheduler, DockerScheduler) and scheduler.name == "docker"
    assert scheduler._client is None  # no engine contacted just by choosing the backend


# -- deploy ----------------------------------------------------------------------------------------

def test_deploy_runs_each_process_with_labels_env_and_limits(sched, spec, app, docker_client, namespace):
    release = spec(app, 3, env={"FOO": "bar baz"}, memory={"web": "64M"}, cpu={"web": 512}, sha="abc123")
    switched = []
    sched.deploy(release, {"web": 2, "worker": 1}, lambda endpoints, backups: switched.append(endpoints))

    found = containers(docker_client, namespace, app)
    assert [c.name for c in found] == [f"{app}.v3.web.1", f"{app}.v3.web.2", f"{app}.v3.worker.1"]
    web1 = found[0]
    assert {k: v for k, v in web1.labels.items() if k.startswith(namespace)} == {
        f"{namespace}.managed": "1", f"{namespace}.app": app, f"{namespace}.release": "v3",
        f"{namespace}.type": "web", f"{namespace}.num": "1", f"{namespace}.port": "8080"}
    env = env_of(web1)
    assert env["FOO"] == "bar baz" and env["PORT"] == "8080"  # the image EXPOSEs 8080
    assert env["DEIS_APP"] == app and env["DEIS_RELEASE"] == env["WORKFLOW_RELEASE"] == "v3"
    assert env["SOURCE_VERSION"] == env["GIT_SHA"] == "abc123"
    assert web1.attrs["Config"]["Entrypoint"] == ["bash", "-c"] and web1.attrs["Config"]["Cmd"] == [WEB]
    host = web1.attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024 and host["CpuShares"] == 512
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    # No limit of its own: the platform's default (limits.py); every container is confined alike.
    assert found[2].attrs["HostConfig"]["Memory"] == 512 * 1024 * 1024
    for container in found:
        host = container.attrs["HostConfig"]
        assert host["MemorySwap"] == host["Memory"] and host["PidsLimit"] == 256
        assert host["CapDrop"] == ["ALL"] and "NET_RAW" not in host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}

    states = sched.state(app)
    assert [(p["type"], p["num"], p["state"], p["release"]) for p in states] == [
        ("web", 1, "up", "v3"), ("web", 2, "up", "v3"), ("worker", 1, "up", "v3")]
    endpoints = sched.endpoints(app)
    assert [(e.type, e.num, e.port) for e in endpoints] == [("web", 1, 8080), ("web", 2, 8080)]
    assert switched == [endpoints]
    for endpoint in endpoints:
        assert get(endpoint.address, endpoint.port) == (200, "hello from busybox\n")


def test_port_rules(sched, spec, app, image):
    assert sched.port(spec(app, procfile={})) == 8080                        # EXPOSE of the image
    assert sched.port(spec(app, env={"PORT": "9000"})) == 9000               # PORT config var
    assert sched.port(spec(app, env={"PORT": "9000"}, buildpack=True)) == 5000  # slugs: always 5000
    assert sched._command(spec(app, buildpack=True), "web cmd") == {"command": ["web cmd"]}


def test_image_without_procfile_runs_its_cmd_on_config_port(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1, procfile={}, env={"PORT": "9000"}), {"cmd": 1})
    [container] = containers(docker_client, namespace, app)
    assert container.name == f"{app}.v1.cmd.1"
    assert container.attrs["Config"]["Entrypoint"] is None
    assert [p["state"] for p in sched.state(app)] == ["up"]
    address = container.attrs["NetworkSettings"]["Networks"][sched.network_name(app)]["IPAddress"]
    # An image's own CMD is routed like web (as Deis v1 routed image and Dockerfile apps).
    assert [(e.type, e.num, e.address, e.port) for e in sched.endpoints(app)] == [("cmd", 1, address, 9000)]
    assert get(address, 9000)[0] == 200


def test_new_release_switches_before_stopping_the_old(make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(min_uptime=1.5)  # long enough that the new ones are on probation at the switch
    sched.deploy(spec(app, 1), {"web": 1, "worker": 1})
    old = {c.name for c in containers(docker_client, namespace, app)}
    events = []

    def switch(endpoints, backups=()):
        running = {c.name for c in containers(docker_client, namespace, app) if c.status == "running"}
        events.append(("switch", [e.num for e in endpoints], [b.num for b in backups], old <= running))
        for endpoint in [*endpoints, *backups]:
            assert get(endpoint.address, endpoint.port)[0] == 200

    sched.deploy(spec(app, 2), {"web": 2, "worker": 1}, switch)
    # Routed at once with the old process as the backup while the new ones must stay up, then alone
    # (one switch only when the check itself outlasted the minimum uptime, on a loaded machine).
    assert events[-1] == ("switch", [1, 2], [], True)
    assert events[:-1] in ([], [("switch", [1, 2], [1], True)])
    assert names(docker_client, namespace, app) == [f"{app}.v2.web.1", f"{app}.v2.web.2", f"{app}.v2.worker.1"]
    assert {p["release"] for p in sched.state(app)} == {"v2"}


def test_failing_release_leaves_the_old_one_serving(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1), {"web": 1})
    before = containers(docker_client, namespace, app)
    switched = []
    broken = spec(app, 2, procfile={"web": "echo boom on $PORT; exit 1"})
    with pytest.raises(DeployError) as failure:
        sched.deploy(broken, {"web": 1}, lambda endpoints, backups: switched.append(endpoints))
    assert "web.1 exited with code 1" in str(failure.value)
    assert failure.value.logs == ["boom on 8080"]
    assert switched == []
    after = containers(docker_client, namespace, app)
    assert [c.id for c in after] == [c.id for c in before] and after[0].status == "running"
    [endpoint] = sched.endpoints(app)
    assert get(endpoint.address, endpoint.port)[0] == 200


def test_worker_that_dies_fails_the_deploy(make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(settle=1.5)
    with pytest.raises(DeployError, match=r"worker\.1 exited with code 3"):
        sched.deploy(spec(app, 1, procfile={"web": WEB, "worker": "sleep 0.3; exit 3"}), {"web": 1, "worker": 1})
    assert names(docker_client, namespace, app) == []


def test_healthcheck_url_must_answer(make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(deploy_timeout=2)
    with pytest.raises(DeployError, match=r"web\.1 health check GET /missing answered 404"):
        sched.deploy(spec(app, 1, env={"HEALTHCHECK_URL": "/missing", "HEALTHCHECK_TIMEOUT": "1"}), {"web": 1})
    assert names(docker_client, namespace, app) == []
    sched.deploy(spec(app, 2, env={"HEALTHCHECK_URL": "/index.html", "HEALTHCHECK_INITIAL_DELAY": "0.2"}),
                 {"web": 1})
    assert [p["state"] for p in sched.state(app)] == ["up"]


def test_web_that_never_listens_times_out(make_scheduler, spec, app):
    sched = make_scheduler(deploy_timeout=1.5)
    with pytest.raises(DeployError, match=r"web\.1 did not accept connections on port 8080 within 1.5 s"):
        sched.deploy(spec(app, 1, procfile={"web": "echo not listening; sleep 60"}), {"web": 1})


def test_slow_web_is_waited_for(sched, spec, app):
    sched.deploy(spec(app, 1, procfile={"web": "sleep 1.5; " + WEB}), {"web": 1})
    assert [p["state"] for p in sched.state(app)] == ["up"]


def test_missing_image_fails_before_anything_changes(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1), {"web": 1})
    missing = ReleaseSpec(app=app, version=2, image="deis-test/missing:nope", procfile={"web": WEB})
    with pytest.raises(DeployError, match="deis-test/missing:nope is not available"):
        sched.deploy(missing, {"web": 1})
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]


def test_failing_switch_keeps_the_old_release(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1), {"web": 1})

    def switch(endpoints, backups=()):
        raise RuntimeError("router down")

    with pytest.raises(DeployError, match="router down"):
        sched.deploy(spec(app, 2), {"web": 1}, switch)
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]


def test_state_is_starting_until_healthy(sched, spec, app):
    errors = []

    def deploy():
        try:
            sched.deploy(spec(app, 1, procfile={"web": "sleep 2; " + WEB}), {"web": 1})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=deploy)
    thread.start()
    try:
        assert wait_for(lambda: [p["state"] for p in sched.state(app)] == ["starting"], 5, 0.05)
        assert sched.endpoints(app) == []
    finally:
        thread.join(30)
    assert errors == []
    assert [p["state"] for p in sched.state(app)] == ["up"]


# -- scale -----------------------------------------------------------------------------------------

def test_scale_up_and_down(sched, spec, app, docker_client, namespace):
    release = spec(app, 1)
    sched.deploy(release, {"web": 1})
    first = containers(docker_client, namespace, app)[0].id
    switched = []
    sched.scale(release, {"web": 3, "worker": 1}, lambda endpoints, backups: switched.append(endpoints))
    assert names(docker_client, namespace, app) == [f"{app}.v1.{t}" for t in ("web.1", "web.2", "web.3", "worker.1")]
    assert containers(docker_client, namespace, app)[0].id == first  # kept, not replaced
    assert [e.num for e in switched[-1]] == [1, 2, 3]
    sched.scale(release, {"web": 1, "worker": 0}, lambda endpoints, backups: switched.append(endpoints))
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]
    assert [e.num for e in switched[-1]] == [1]
    # Another release than the running one: a full deploy.
    sched.scale(spec(app, 2), {"web": 2})
    assert names(docker_client, namespace, app) == [f"{app}.v2.web.1", f"{app}.v2.web.2"]


# -- crashes ---------------------------------------------------------------------------------------

def test_killed_process_is_restarted(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1), {"web": 1})
    [container] = containers(docker_client, namespace, app)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)

    def back():
        container.reload()
        return container.attrs["RestartCount"] >= 1 and container.status == "running"

    assert wait_for(back, 10)
    assert wait_for(lambda: [p["state"] for p in sched.state(app)] == ["up"], 10)
    assert len(sched.endpoints(app)) == 1


def test_crash_loop_shows_as_crashed(sched, spec, app):
    sched.deploy(spec(app, 1, procfile={"worker": "sleep 1; echo dying; exit 3"}), {"worker": 1})
    seen = wait_for(lambda: [p for p in sched.state(app) if p["state"] == "crashed"], 10, 0.05)
    assert seen and seen[0]["type"] == "worker" and seen[0]["num"] == 1


# Binds PORT at once, then runs out of its 16 MB within its first second (as an app that loads too much).
OOM_WEB = "httpd -p $PORT -h /www; sleep 0.4; head -c 64000000 /dev/zero | tail > /dev/null"


def test_a_web_process_that_dies_in_its_first_second_never_replaces_the_running_release(
        make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(min_uptime=1.0)
    sched.deploy(spec(app, 1), {"web": 1})
    with pytest.raises(DeployError, match="web.1 exited with code 137 \\(out of memory\\)"):
        sched.deploy(spec(app, 2, procfile={"web": OOM_WEB}, memory={"web": "16M"}), {"web": 1})
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]


def test_a_web_process_that_dies_while_on_probation_routes_back_to_the_old_release(
        make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(min_uptime=1.5)
    sched.deploy(spec(app, 1), {"web": 1})
    old = containers(docker_client, namespace, app)[0]
    old_address = old.attrs["NetworkSettings"]["Networks"][sched.network_name(app)]["IPAddress"]
    switches = []

    def switch(endpoints, backups=()):
        switches.append(([e.address for e in endpoints], [b.address for b in backups]))

    with pytest.raises(DeployError, match="out of memory"):
        sched.deploy(spec(app, 2, procfile={"web": OOM_WEB}, memory={"web": "16M"}), {"web": 1}, switch)
    if switches:  # none when it died before its check passed (a loaded machine): the same outcome
        [(new, backups), back] = switches
        assert backups == [old_address] and new != [old_address]  # the old one stood behind the new one
        assert back == ([old_address], [])
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]


def test_a_crash_loop_shows_crashed_with_its_last_exit_between_crashes(sched, spec, app):
    sched.deploy(spec(app, 1, procfile={"worker": "sleep 1.2; head -c 64000000 /dev/zero | tail > /dev/null"},
                      memory={"worker": "16M"}), {"worker": 1})

    def running_again():
        [proc] = sched.state(app)
        return proc if proc["restarts"] >= 1 and proc["last_exit"] and proc["state"] != "starting" else None

    proc = wait_for(running_again, 15, 0.1)
    assert proc, sched.state(app)
    assert proc["state"] == "crashed"
    assert proc["last_exit"]["reason"] == "oom" and proc["last_exit"]["at"]
    assert proc["last_exit"]["exit_code"] == 137


# Restarts are rollouts (Convergence.restart): tests/scheduler/engine_suite.py covers them.


# -- one-offs --------------------------------------------------------------------------------------

def test_run_returns_exit_code_and_output(sched, spec, app, docker_client, namespace):
    code, output = sched.run(spec(app, 4, env={"GREETING": "hi"}), "echo $GREETING $DEIS_RELEASE; echo err >&2; exit 3")
    assert code == 3
    # stdout and stderr come through separate pipes: their relative order is not guaranteed.
    assert sorted(output.splitlines()) == ["err", "hi v4"] and output.endswith("\n")
    assert names(docker_client, namespace, app) == []


def test_run_timeout_kills(sched, spec, app, docker_client, namespace):
    started = time.monotonic()
    code, output = sched.run(spec(app, 1), "echo started; sleep 30", timeout=1)
    assert time.monotonic() - started < 10
    assert code == 124
    assert output.startswith("started\n") and "Timed out after 1 s" in output
    assert names(docker_client, namespace, app) == []


# -- logs ------------------------------------------------------------------------------------------

def test_logs_merged_and_tagged(sched, spec, app):
    sched.deploy(spec(app, 1), {"web": 1, "worker": 1})
    assert wait_for(lambda: len(sched.logs(app, 1000)) >= 9, 10)
    lines = sched.logs(app, 8)
    assert len(lines) == 8
    pattern = re.compile(rf"^(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}\+00:00) {app}\[(web|worker)\.1\]: (.*)$")
    parsed = [pattern.match(line) for line in lines]
    assert all(parsed), lines
    stamps = [m.group(1) for m in parsed]
    assert stamps == sorted(stamps)
    assert any(m.group(2) == "worker" and m.group(3) == "tick v1" for m in parsed)
    everything = sched.logs(app, 1000)
    assert any(line.endswith(f"{app}[web.1]: web 8080 up") for line in everything)
    assert sched.logs(app, 1) == everything[-1:]


# -- destroy and reconcile -------------------------------------------------------------------------

def test_destroy_removes_only_that_app(sched, spec, new_app, docker_client, namespace):
    one, two = new_app(), new_app()
    sched.deploy(spec(one, 1), {"web": 1, "worker": 1})
    sched.deploy(spec(two, 1), {"web": 1})
    sched.destroy(one)
    assert names(docker_client, namespace, one) == []
    assert names(docker_client, namespace, two) == [f"{two}.v1.web.1"]
    assert sched.state(one) == [] and sched.endpoints(one) == []


def test_reconcile_converges_and_is_idempotent(sched, spec, new_app, docker_client, namespace, image):
    app, gone = new_app(), new_app()
    release = spec(app, 2)
    sched.deploy(release, {"web": 2, "worker": 1})
    sched.deploy(spec(gone, 1), {"web": 1})
    docker_client.containers.get(f"{app}.v2.web.2").remove(force=True)
    docker_client.containers.get(f"{app}.v2.worker.1").stop(timeout=0)
    # A stray: a process beyond the counts that should not run any more.
    stray = sched._create(release, "web", "3", 8080, WEB, restart="unless-stopped")
    stray.start()

    report = sched.reconcile({app: (release, {"web": 2, "worker": 1})})
    assert report["started"] == [f"{app}.v2.web.2"]
    assert report["restarted"] == [f"{app}.v2.worker.1"]
    assert sorted(report["removed"]) == sorted([f"{app}.v2.web.3", f"{gone}.v1.web.1"])
    assert report["errors"] == {}
    assert names(docker_client, namespace, app) == [f"{app}.v2.web.1", f"{app}.v2.web.2", f"{app}.v2.worker.1"]
    assert names(docker_client, namespace, gone) == []
    assert wait_for(lambda: {p["state"] for p in sched.state(app)} == {"up"}, 5)

    again = sched.reconcile({app: (release, {"web": 2, "worker": 1})})
    assert again == {"started": [], "restarted": [], "removed": [], "booting": [], "deployed": [], "errors": {}}


def _cut_rollout(sched, release, ptype="web", num="1", command=WEB):
    """What a controller killed in the middle of a deploy leaves: a new process started, never promoted."""
    container = sched._create(release, ptype, num, 8080, command)
    container.start()
    return container


def test_reconcile_finishes_a_rollout_cut_short_and_keeps_the_old_release_serving_until_the_switch(
        make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(min_uptime=1.5)
    sched.deploy(spec(app, 1), {"web": 1})
    old = docker_client.containers.get(f"{app}.v1.web.1")
    _cut_rollout(sched, spec(app, 2))
    # Not promoted: it serves nothing and shows as starting, whoever looks (no memory of the dead process).
    assert [(p["release"], p["state"]) for p in sched.state(app) if p["release"] == "v2"] == [("v2", "starting")]
    assert [e.num for e in sched.endpoints(app)] == [1] and sched.endpoints(app)[0].address == \
        old.attrs["NetworkSettings"]["Networks"][sched.network_name(app)]["IPAddress"]
    seen_at_switch = []

    def switch(endpoints, backups=()):
        old.reload()
        seen_at_switch.append((old.status, [e.num for e in endpoints]))

    report = sched.reconcile_app(spec(app, 2), {"web": 1}, switch=switch)
    assert report["deployed"] == [app]
    # The old one served until the new one was switched to (with it as the backup, then alone).
    assert seen_at_switch in ([("running", [1])], [("running", [1]), ("running", [1])])
    assert names(docker_client, namespace, app) == [f"{app}.v2.web.1"]
    assert [p["state"] for p in sched.state(app)] == ["up"]


def test_reconcile_of_a_cut_rollout_that_never_becomes_healthy_fails_and_leaves_the_old_release(
        make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(deploy_timeout=2)
    sched.deploy(spec(app, 1), {"web": 1})
    broken = spec(app, 2, procfile={"web": "echo never listening; sleep 60"})
    _cut_rollout(sched, broken, command="sleep 60")
    with pytest.raises(DeployError, match="did not accept connections"):
        sched.reconcile_app(broken, {"web": 1}, switch=lambda endpoints, backups: None)
    assert names(docker_client, namespace, app) == [f"{app}.v1.web.1"]
    assert [p["state"] for p in sched.state(app)] == ["up"]
    # The controller then marks v2 failed and v1 is current again: nothing to do.
    assert sched.reconcile_app(spec(app, 1), {"web": 1})["removed"] == []


def test_reconcile_rolls_out_a_release_that_never_ran(sched, spec, app, docker_client, namespace):
    sched.deploy(spec(app, 1), {"web": 1})
    report = sched.reconcile({app: (spec(app, 2), {"web": 1})})
    assert report["deployed"] == [app]
    assert names(docker_client, namespace, app) == [f"{app}.v2.web.1"]


# -- concurrency -----------------------------------------------------------------------------------

def test_concurrent_deploys_of_one_app_are_serialized(make_scheduler, spec, app, docker_client, namespace):
    sched = make_scheduler(min_uptime=1.5)
    sched.deploy(spec(app, 1), {"web": 1, "worker": 1})
    seen, errors = [], []

    def switch(endpoints, backups=()):
        seen.append({c.labels[f"{namespace}.release"] for c in containers(docker_client, namespace, app)})

    def deploy(version):
        try:
            make_scheduler(min_uptime=1.5).deploy(spec(app, version), {"web": 2, "worker": 1}, switch)  # own each
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(v,)) for v in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    # One or two switches a deploy (with the old processes as backups, then without): old + new,
    # never a third.
    assert 2 <= len(seen) <= 4 and all(len(releases) == 2 for releases in seen)
    final = {p["release"] for p in sched.state(app)}
    assert len(final) == 1 and len(sched.state(app)) == 3
