"""Faults injected into the platform that `deis.platform up` starts, with load through the router
on several apps (issue 9): killed containers, a SIGKILLed reconciler and controller (in the middle
of a deploy), a dockerd restart, a whole-host restart, an app over its memory limit.

Every answer is checked for the app it came from: each app's page names the app and its release,
so an answer from another app's process is counted (it must never happen). Each scenario measures
the requests that failed and the seconds until every app answered again, prints them (the figures
in docs/benchmarks.md), and ends with the platform consistent: the engine runs exactly the current
release at the app's scale, routes lead to those processes, releases are consecutive.

Retries: none. The load uses a fresh connection per request.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from deis.platform import Controller
from deis.scheduler.docker import purge
from tests.conftest import ApiUser, LiveController
from tests.e2e.test_engine_restart import engine_answers, restart_dockerd
from tests.scheduler.busybox_image import ensure_image
from tests.scheduler.test_docker import wait_for
from tests.test_platform import platform, platform_env

ROOT = Path(__file__).resolve().parents[2]
# The page names the app and release that served it.
WEB = 'echo "$DEIS_APP $DEIS_RELEASE" > /www/index.html; exec httpd -f -p $PORT -h /www'
LOAD_LIMIT = 15 * 60  # seconds the load may run at most, whatever happens
PAUSE = 0.01


@dataclass
class Answer:
    at: float
    app: str
    status: int | str
    served_by: str = ""  # the app named by the page


@dataclass
class Load:
    """One thread per app sending GETs through the router, each on a fresh connection."""

    port: int
    apps: list[str]
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run, args=(app,), daemon=True) for app in self.apps]
        for thread in self.threads:
            thread.start()

    def _run(self, app: str) -> None:
        end = time.monotonic() + LOAD_LIMIT
        while not self.stop.is_set() and time.monotonic() < end:
            at = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/", headers={"Host": f"{app}.localhost", "Connection": "close"})
                response = conn.getresponse()
                body = response.read().decode(errors="replace").split()
                self.answers.append(Answer(at, app, response.status, body[0] if body else ""))
            except (OSError, http.client.HTTPException) as exc:
                self.answers.append(Answer(at, app, type(exc).__name__))
            finally:
                conn.close()
            time.sleep(PAUSE)

    def since(self, t0: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= t0]

    def wrong(self, t0: float = 0.0) -> list[Answer]:
        """Answers with status 200 from another app's process."""
        return [a for a in self.since(t0) if a.status == 200 and a.served_by != a.app]

    def failed(self, t0: float, t1: float) -> int:
        return sum(1 for a in self.since(t0) if a.at <= t1 and a.status != 200)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A platform of its own with four apps under load: `solo` (web=1), `pair` (web=2), `busy`
    (web=1 and a ticker worker) and `slow` (web=1, listening 2 s after it starts)."""
    data_dir = tmp_path_factory.mktemp("faults")
    env = platform_env(data_dir)
    # The defaults of `make up` where the faults matter: a resync only every 10 s, so whatever
    # recovers faster follows the engine's events.
    env.update(DEIS_RECONCILE_INTERVAL="10", DEIS_DEPLOY_TIMEOUT="20", DEIS_MIN_UPTIME="0.5")
    client = docker.from_env()
    image = ensure_image(client)
    namespace = env["DEIS_DOCKER_NAMESPACE"]
    tag = uuid.uuid4().hex[:6]
    apps = {f"solo-{tag}": {"web": 1}, f"pair-{tag}": {"web": 2}, f"busy-{tag}": {"web": 1, "ticker": 1},
            f"slow-{tag}": {"web": 1}, f"slug-{tag}": {"web": 1}}
    load = None
    try:
        up = platform("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        live = LiveController(Controller(data_dir=data_dir, port=int(env["DEIS_CONTROLLER_PORT"])))
        user = live.register_admin("admin")
        for app, structure in apps.items():
            assert user.post("/v1/apps", json={"id": app}).status_code == 201
            procfile = {"web": ("sleep 2; " if app.startswith("slow") else "") + WEB,
                        "ticker": "while true; do echo tick; sleep 1; done"}
            build = {"image": image, "procfile": procfile}
            if app.startswith("slug"):
                build = buildpack_build(app, data_dir, tmp_path_factory.mktemp("slug"))
            assert user.post(f"/v1/apps/{app}/builds", json=build).status_code == 201, app
            assert user.post(f"/v1/apps/{app}/scale", json=structure).status_code == 204
        load = Load(int(env["DEIS_ROUTER_PORT"]), sorted(apps))
        load.start()
        fleet = {"env": env, "data_dir": data_dir, "client": client, "namespace": namespace, "user": user,
                 "apps": apps, "load": load, "figures": {}}
        wait_serving(fleet, time.monotonic(), 30)
        yield fleet
        print_figures(fleet["figures"])
        if os.environ.get("DEIS_FAULTS_FIGURES"):  # bench/faults.py reads them
            Path(os.environ["DEIS_FAULTS_FIGURES"]).write_text(__import__("json").dumps(fleet["figures"]))
    finally:
        if load is not None:
            load.close()
        platform("down", env)
        purge(client, namespace)


# -- helpers -----------------------------------------------------------------------------------------

def buildpack_build(app: str, data_dir: Path, work: Path) -> dict:
    """A static site built by the platform's own builder code with its data directory (the
    labels of its build containers are the builder's), as a push would build it."""
    from deis.builder import pipeline

    (work / "index.html").write_text(f"{app} static\n")
    sha = uuid.uuid4().hex + "00000000"
    result = pipeline.build(work, app, sha, {}, lambda line: None, data_dir)
    result.released()
    return {"image": result.image, "sha": sha, "procfile": result.procfile}


def wait_serving(fleet, t0: float, limit: float, apps=None) -> float:
    """Seconds from t0 until each app's last 5 answers were all 200 from itself, within `limit` s."""
    load, apps = fleet["load"], apps or fleet["apps"]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        recent = {app: [a for a in load.since(t0) if a.app == app][-5:] for app in apps}
        if all(len(r) == 5 and all(a.status == 200 and a.served_by == app for a in r) for app, r in recent.items()):
            return max(r[0].at for r in recent.values()) - t0
        time.sleep(0.05)
    tails = {app: [(round(a.at - t0, 2), a.status) for a in load.since(t0) if a.app == app][-5:] for app in apps}
    raise AssertionError(f"not serving again within {limit} s: {tails}; {_where(fleet, apps)}")


def _where(fleet, apps) -> str:
    """What the router routes each app to, and what its processes are (for a failure's message)."""
    import json

    from deis.router.runtime_api import RuntimeAPI

    try:
        state = json.loads((fleet["data_dir"] / "router" / "state.json").read_text())
        routed = {app: state["routes"].get(app, {}).get("upstreams") for app in apps}
        api = RuntimeAPI(fleet["data_dir"] / "router" / "admin.sock", timeout=2)
        live = {app: sorted(api.servers(state["slots"][app])) for app in apps if app in state.get("slots", {})}
        found = {app: [(c.name, c.status, next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])
                       for c in containers(fleet, app)] for app in apps}
        return f"routes {routed} (state generation {state['generation']}, HAProxy serves {live}); processes {found}"
    except Exception as exc:  # noqa: BLE001 - a diagnosis, best effort
        return f"(no diagnosis: {exc})"


def record(fleet, scenario: str, t0: float, seconds: float) -> None:
    load = fleet["load"]
    failed = load.failed(t0, t0 + seconds + 1)
    total = len([a for a in load.since(t0) if a.at <= t0 + seconds + 1])
    fleet["figures"][scenario] = (failed, total, seconds)
    assert load.wrong() == [], f"answers from another app: {load.wrong()[:5]}"


def print_figures(figures: dict) -> None:
    print("\nscenario | requests failed (of sent) | seconds until every app served again")
    for scenario, (failed, total, seconds) in figures.items():
        print(f"{scenario} | {failed} of {total} | {seconds:.2f}")


def containers(fleet, app: str):
    return fleet["client"].containers.list(
        all=True, filters={"label": [f"{fleet['namespace']}.managed=1", f"{fleet['namespace']}.app={app}"]},
        ignore_removed=True)


def assert_consistent(fleet, limit: float = 30.0) -> None:
    """The engine runs exactly the current release at the app's scale, every process running, each
    routed web process among the router's upstreams, and releases numbered without a gap."""
    user, deadline = fleet["user"], time.monotonic() + limit
    while True:
        problems = []
        state = __import__("json").loads((fleet["data_dir"] / "router" / "state.json").read_text())
        for app, structure in fleet["apps"].items():
            releases = user.get(f"/v1/apps/{app}/releases").json()["results"]
            current = max(r["version"] for r in releases if not r.get("failed"))
            versions = sorted(r["version"] for r in releases)
            if versions != list(range(1, len(versions) + 1)):
                problems.append(f"{app}: releases {versions}")
            wanted = sorted(f"{app}.v{current}.{t}.{n}" for t, c in structure.items() for n in range(1, c + 1))
            found = containers(fleet, app)
            ns = fleet["namespace"]  # a restarted process has a name of its own: compare by labels
            names = sorted(f"{app}.{c.labels[ns + '.release']}.{c.labels[ns + '.type']}.{c.labels[ns + '.num']}"
                           for c in found)
            if names != wanted or any(c.status != "running" for c in found):
                problems.append(f"{app}: {[(c.name, c.status) for c in found]} != {wanted}")
            addresses = sorted(next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
                               for c in found if ".web." in c.name)
            routed = sorted(h for h, _ in state["routes"].get(app, {}).get("upstreams", []))
            if addresses != routed:
                problems.append(f"{app}: routes {routed} != processes {addresses}")
            if user.get(f"/v1/apps/{app}").status_code != 200:
                problems.append(f"{app}: gone")
        if not problems:
            return
        if time.monotonic() > deadline:
            raise AssertionError("; ".join(problems))
        time.sleep(0.5)


def platform_pids(data_dir: Path, needle: str) -> list[int]:
    """Pids of this platform's processes whose command line has `needle` (by DEIS_DATA_DIR)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in cmdline and f"DEIS_DATA_DIR={data_dir}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def router_pids(data_dir: Path) -> list[int]:
    """This platform's HAProxy master and its workers."""
    master = int((data_dir / "router" / "haproxy.pid").read_text().split()[0])
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(") ", 1)[1].split()[1] == str(master):
                workers.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return [master, *workers]


def deployer_pids(data_dir: Path) -> list[int]:
    return platform_pids(data_dir, "deis.controller deploy") or platform_pids(data_dir, "deis.controller reconcile")


def kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def release_of(fleet, app: str, version: int) -> dict:
    return fleet["user"].get(f"/v1/apps/{app}/releases/v{version}").json()


# -- the scenarios -------------------------------------------------------------------------------------

def test_killed_processes_of_every_app_are_replaced_at_once_and_no_route_leads_to_another_app(fleet):
    """`docker kill` (a manual stop to Docker's restart policy) of every web process at once: each is
    started again from the engine's events, long before the 10 s resync."""
    t0 = time.monotonic()
    for app in fleet["apps"]:
        for container in containers(fleet, app):
            if ".web." in container.name:
                container.kill()
    seconds = wait_serving(fleet, t0, 8)
    record(fleet, f"docker kill of every web process ({len(fleet['apps'])} apps)", t0, seconds)
    assert_consistent(fleet)


def test_crash_and_kill_together_never_route_one_app_to_another(fleet):
    """The reported case: app A killed while app B crashes and Docker restarts it (B could take A's
    old address on a shared network)."""
    solo, busy = (next(a for a in fleet["apps"] if a.startswith(p)) for p in ("solo", "busy"))
    t0 = time.monotonic()
    [solo_web] = [c for c in containers(fleet, solo) if ".web." in c.name]
    [busy_web] = [c for c in containers(fleet, busy) if ".web." in c.name]
    solo_web.kill()
    os.kill(busy_web.attrs["State"]["Pid"], signal.SIGKILL)  # a crash: Docker restarts it itself
    seconds = wait_serving(fleet, t0, 8)
    record(fleet, "kill of one app and crash of another", t0, seconds)
    assert_consistent(fleet)


def test_a_replacement_that_boots_slowly_is_routed_within_a_second_of_listening(fleet):
    """While the replacement boots the route keeps its last upstream (nothing else could serve);
    once it listens, the reconciler, looking again every 0.1-0.5 s, routes to it."""
    slow = next(a for a in fleet["apps"] if a.startswith("slow"))
    [web] = [c for c in containers(fleet, slow) if ".web." in c.name]
    t0 = time.monotonic()
    web.kill()
    seconds = wait_serving(fleet, t0, 15, apps=[slow])
    web.reload()
    assert web.status == "running"
    started = fleet["client"].api.inspect_container(web.id)["State"]["StartedAt"]
    from deis.scheduler.docker import _started_at
    listening = _started_at({"State": {"StartedAt": started}}) + 2.0  # the command sleeps 2 s first
    first = next(a for a in fleet["load"].since(t0) if a.app == slow and a.status == 200)
    lag = (time.time() - time.monotonic() + first.at) - listening
    assert lag < 1.0, f"routed {lag:.2f} s after it listened"
    record(fleet, f"docker kill of a web process that takes 2 s to listen (served {lag:.2f} s after it listened)",
           t0, seconds)
    assert_consistent(fleet)


def test_a_builder_killed_and_restarted_by_the_supervisor_leaves_every_app_serving(fleet):
    """Its start removes what a killed builder left, and nothing else: the buildpack app's
    container (run from an image the builder committed) stays."""
    slug = next(a for a in fleet["apps"] if a.startswith("slug"))
    before = sorted(c.id for app in fleet["apps"] for c in containers(fleet, app))
    pids = platform_pids(fleet["data_dir"], "deis.builder serve")
    assert pids
    t0 = time.monotonic()
    kill9(pids)
    restarted = wait_for(lambda: [p for p in platform_pids(fleet["data_dir"], "deis.builder serve") if p not in pids], 15)
    assert restarted, "the builder was not restarted"
    time.sleep(3)  # its start-up clean-up has run by now
    assert sorted(c.id for app in fleet["apps"] for c in containers(fleet, app)) == before
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    assert any(a.app == slug and a.status == 200 for a in fleet["load"].since(t0))
    record(fleet, "SIGKILL of the builder (restarted, its clean-up run)", t0, 0.0)
    assert_consistent(fleet)


def test_a_killed_reconciler_is_restarted_and_replaces_what_died_meanwhile(fleet):
    solo = next(a for a in fleet["apps"] if a.startswith("solo"))
    pids = deployer_pids(fleet["data_dir"])
    assert pids
    t0 = time.monotonic()
    kill9(pids)
    [web] = [c for c in containers(fleet, solo) if ".web." in c.name]
    web.kill()
    assert wait_for(lambda: deployer_pids(fleet["data_dir"]), 10)
    seconds = wait_serving(fleet, t0, 15)
    record(fleet, "SIGKILL of the reconciler, then docker kill of a web process", t0, seconds)
    assert_consistent(fleet)


def _kill_controller_during_a_deploy(fleet, app: str, values: dict) -> tuple[float, int]:
    """POST a config change whose processes take a while to pass their check, and SIGKILL every
    process of the controller while they are checked. Returns (t0, the new release's version)."""
    user = fleet["user"]
    before = max(r["version"] for r in user.get(f"/v1/apps/{app}/releases").json()["results"])
    thread = threading.Thread(target=lambda: _post_quietly(user, f"/v1/apps/{app}/config", {"values": values}),
                              daemon=True)
    t0 = time.monotonic()
    thread.start()
    new = f"{app}.v{before + 1}.web.1"
    assert wait_for(lambda: any(c.name == new for c in containers(fleet, app)), 10), "the deploy never started"
    time.sleep(0.5)
    killed = time.monotonic()
    kill9(platform_pids(fleet["data_dir"], "gunicorn"))
    thread.join(15)
    # The supervisor starts it again; the test's own API calls wait for that, as a person would.
    back = wait_for(lambda: _answers(user.base + "/healthz"), 30, 0.1)
    assert back, "the controller did not come back"
    fleet["figures"]["SIGKILL of the controller: API answering again"] = (0, 0, time.monotonic() - killed)
    return t0, before + 1


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _post_quietly(user, url, body):
    try:
        user.post(url, json=body, timeout=60)
    except Exception:  # noqa: BLE001 - the controller is killed under it on purpose
        pass


def test_a_controller_killed_in_the_middle_of_a_deploy_keeps_the_old_release_serving_and_the_rollout_completes(fleet):
    solo = next(a for a in fleet["apps"] if a.startswith("solo"))
    t0, version = _kill_controller_during_a_deploy(fleet, solo, {"HEALTHCHECK_INITIAL_DELAY": "3"})
    # The old release serves throughout; the reconciler finishes the rollout by itself.
    def rolled_out():
        found = containers(fleet, solo)
        return [c.name for c in found] == [f"{solo}.v{version}.web.1"] and found[0].status == "running" \
            and found[0].attrs["HostConfig"]["RestartPolicy"]["Name"] != "no"

    assert wait_for(rolled_out, 40), [(c.name, c.status) for c in containers(fleet, solo)]
    seconds = time.monotonic() - t0
    assert not release_of(fleet, solo, version).get("failed")
    wait_serving(fleet, t0, 10)
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, "SIGKILL of the controller during a deploy (completed by the reconciler)", t0, seconds)
    assert_consistent(fleet)


def test_a_controller_killed_during_a_deploy_that_never_becomes_healthy_leaves_it_failed_and_the_old_release_serving(fleet):
    pair = next(a for a in fleet["apps"] if a.startswith("pair"))
    t0, version = _kill_controller_during_a_deploy(fleet, pair, {"HEALTHCHECK_URL": "/missing"})
    assert wait_for(lambda: release_of(fleet, pair, version).get("failed"), 60), release_of(fleet, pair, version)
    assert "/missing answered 404" in release_of(fleet, pair, version)["failure"]
    seconds = time.monotonic() - t0
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, "SIGKILL of the controller during a deploy that never becomes healthy", t0, seconds)
    assert_consistent(fleet)


def quiet(user) -> ApiUser:
    """The same user, not waiting after a change (as the v1 client): the answer comes at once."""
    return ApiUser(user.base, user.username, user.token, settle=False)


def _rolled_out(fleet, app: str, version: int) -> bool:
    """Only `version`'s processes run, each promoted (its check passed), and the release says so."""
    found = containers(fleet, app)
    ns = fleet["namespace"]
    return bool(found) and all(c.labels[f"{ns}.release"] == f"v{version}" and c.status == "running"
                               and c.attrs["HostConfig"]["RestartPolicy"]["Name"] != "no" for c in found) \
        and release_of(fleet, app, version).get("state") == "deployed"


def test_a_deployer_killed_in_the_middle_of_a_rollout_is_restarted_and_completes_it(fleet):
    busy = next(a for a in fleet["apps"] if a.startswith("busy"))
    user = quiet(fleet["user"])
    t0 = time.monotonic()
    answer = user.post(f"/v1/apps/{busy}/config", json={"values": {"HEALTHCHECK_INITIAL_DELAY": "3"}})
    assert answer.status_code == 201
    version = int(answer.headers["Deis-Release"])
    new = f"{busy}.v{version}.web.1"
    assert wait_for(lambda: any(c.name == new for c in containers(fleet, busy)), 10), "the rollout never started"
    time.sleep(0.5)  # in the health check's initial delay now
    pids = deployer_pids(fleet["data_dir"])
    kill9(pids)
    assert wait_for(lambda: [p for p in deployer_pids(fleet["data_dir"]) if p not in pids], 10), "not restarted"
    assert wait_for(lambda: _rolled_out(fleet, busy, version), 40), \
        ([(c.name, c.status) for c in containers(fleet, busy)], release_of(fleet, busy, version))
    seconds = time.monotonic() - t0
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    rollout = user.get(f"/v1/apps/{busy}/rollout").json()
    assert rollout["phase"] == "deployed" and rollout["observed"] == rollout["generation"]
    record(fleet, "SIGKILL of the deployer during a rollout (completed by its successor)", t0, seconds)
    assert_consistent(fleet)


def test_the_routers_reconciler_killed_during_a_switch_is_restarted_and_the_switch_completes(fleet):
    """SIGKILL of the router's reconciler (a thread of the deployer's process) while a rollout waits
    for its switch to be served: supervisord starts the process again, the reconciler finds the row
    not served yet and serves it, the deployer takes the rollout over; it completes and no request
    fails meanwhile (the old process serves until then)."""
    busy = next(a for a in fleet["apps"] if a.startswith("busy"))
    user = quiet(fleet["user"])
    t0 = time.monotonic()
    answer = user.post(f"/v1/apps/{busy}/config", json={"values": {"ROUTES_FAULT": str(t0)}})
    assert answer.status_code == 201
    version = int(answer.headers["Deis-Release"])
    new = f"{busy}.v{version}.web.1"
    assert wait_for(lambda: any(c.name == new for c in containers(fleet, busy)), 10), "the rollout never started"
    pids = deployer_pids(fleet["data_dir"])
    assert pids
    kill9(pids)
    assert wait_for(lambda: [p for p in deployer_pids(fleet["data_dir"]) if p not in pids], 10), "not restarted"
    assert wait_for(lambda: _rolled_out(fleet, busy, version), 40), \
        ([(c.name, c.status) for c in containers(fleet, busy)], release_of(fleet, busy, version))
    seconds = time.monotonic() - t0
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, "SIGKILL of the router's reconciler (the deployer's process) during a switch", t0, seconds)
    assert_consistent(fleet)


def test_a_rolling_restart_under_load_loses_no_request(fleet):
    pair = next(a for a in fleet["apps"] if a.startswith("pair"))
    before = {c.id for c in containers(fleet, pair)}
    t0 = time.monotonic()
    answer = fleet["user"].post(f"/v1/apps/{pair}/containers/restart")
    assert answer.status_code == 200 and answer.rollout["phase"] == "deployed", answer.rollout
    seconds = time.monotonic() - t0
    after = {c.id for c in containers(fleet, pair)}
    assert len(after) == 2 and not before & after  # every process replaced
    wait_serving(fleet, t0, 10)
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, "ps:restart of web=2 (rolling)", t0, seconds)
    assert_consistent(fleet)


def test_the_api_answers_at_once_while_every_app_deploys_slowly(fleet):
    """Every app's change takes 4 s to pass its check: each POST is answered while nothing is
    deployed yet, and the API lists apps meanwhile; then all of them complete."""
    user = quiet(fleet["user"])
    apps = sorted(fleet["apps"])
    t0 = time.monotonic()
    versions = {}
    for app in apps:
        answer = user.post(f"/v1/apps/{app}/config", json={"values": {"HEALTHCHECK_INITIAL_DELAY": "4"}})
        assert answer.status_code == 201
        versions[app] = int(answer.headers["Deis-Release"])
    posted = time.monotonic() - t0
    listed = [user.get("/v1/apps").status_code for _ in range(20)]
    pending = [app for app in apps if release_of(fleet, app, versions[app])["state"] in ("pending", "deploying")]
    assert listed == [200] * 20
    assert pending == apps  # the answers came before any rollout could finish
    assert wait_for(lambda: all(_rolled_out(fleet, app, versions[app]) for app in apps), 60)
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, f"{len(apps)} slow deploys at once: all POSTs answered in {posted:.2f} s", t0,
           time.monotonic() - t0)
    assert_consistent(fleet)


def test_make_up_during_a_deploy_storm_leaves_the_controller_and_its_deploys_alone(fleet):
    """Every request worker of the controller busy with a slow deploy: `up` judges the process,
    not a slow `/healthz`, so it restarts nothing and every deploy is answered."""
    user, apps = fleet["user"], [a for a in fleet["apps"] if not a.startswith(("solo", "slow"))]
    controller = sorted(platform_pids(fleet["data_dir"], "gunicorn"))
    answers = {}

    def deploy(app):
        answers[app] = user.post(f"/v1/apps/{app}/config", json={"values": {"HEALTHCHECK_INITIAL_DELAY": "2"}},
                                 timeout=120).status_code

    threads = [threading.Thread(target=deploy, args=(app,), daemon=True) for app in apps]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(0.8)  # the workers are in the deploys' health checks now
    up = platform("up", fleet["env"])
    assert up.returncode == 0, up.stdout + up.stderr
    assert "already up" in up.stdout
    for thread in threads:
        thread.join(120)
    assert answers == {app: 201 for app in apps}
    assert sorted(platform_pids(fleet["data_dir"], "gunicorn")) == controller
    assert fleet["load"].failed(t0, time.monotonic()) == 0
    record(fleet, f"make up during {len(apps)} slow deploys", t0, 0.0)
    assert_consistent(fleet)


def test_a_dockerd_restart_under_load(fleet):
    t0 = time.monotonic()
    restart_dockerd()
    answering = time.monotonic() - t0
    seconds = wait_serving(fleet, t0, 60)
    record(fleet, f"dockerd restart (the engine answered again after {answering:.1f} s)", t0, seconds)
    assert_consistent(fleet)


def test_a_whole_host_restart(fleet):
    """Everything dies at once (SIGKILL of every platform process and of HAProxy, the engine stopped
    with its containers), then the engine starts and `make up` runs, as after a reboot."""
    data_dir = fleet["data_dir"]
    t0 = time.monotonic()
    kill9(platform_pids(data_dir, "deis") + platform_pids(data_dir, "gunicorn") + platform_pids(data_dir, "supervisord"))
    kill9(router_pids(data_dir))
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    for container in fleet["client"].containers.list(filters={"label": f"{fleet['namespace']}.managed=1"}, ignore_removed=True):
        container.kill()  # what a power cut does to them; the engine then stops
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 60)
    subprocess.run([str(ROOT / "scripts" / "docker.sh")], check=True)
    assert engine_answers()
    up = platform("up", fleet["env"])
    assert up.returncode == 0, up.stdout + up.stderr
    seconds = wait_serving(fleet, t0, 60)
    record(fleet, "host restart (everything killed, engine restarted, make up)", t0, seconds)
    assert_consistent(fleet)


def test_an_app_over_its_memory_limit_shows_crashed_with_the_reason(fleet):
    user = fleet["user"]
    app = f"hog-{uuid.uuid4().hex[:6]}"
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    hog = "sleep 2; head -c 64000000 /dev/zero | tail > /dev/null"
    image = ensure_image(fleet["client"])
    assert user.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": WEB, "hog": hog}}).status_code == 201
    assert user.post(f"/v1/apps/{app}/config", json={"memory": {"hog": "16M"}}).status_code == 201
    assert user.post(f"/v1/apps/{app}/scale", json={"web": 1, "hog": 1}).status_code in (204, 503)

    def crashed():
        hogs = [p for p in user.get(f"/v1/apps/{app}/containers/hog").json()["results"]]
        return hogs if hogs and hogs[0]["state"] == "crashed" and hogs[0].get("last_exit") else None

    seen = wait_for(crashed, 20, 0.2)
    assert seen, user.get(f"/v1/apps/{app}/containers").json()
    assert seen[0]["last_exit"]["reason"] == "oom"
    assert user.delete(f"/v1/apps/{app}").status_code == 204
    assert fleet["load"].wrong() == []


def test_the_reconcilers_log_is_dated(fleet):
    """Every record has its time; a traceback only ever follows a dated record (it was hidden by
    Django's root handler before, and printed without one)."""
    import re

    dated = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
    logs = fleet["data_dir"] / "logs"
    lines = ((logs / "deployer.log") if (logs / "deployer.log").exists() else (logs / "reconciler.log")) \
        .read_text().splitlines()
    assert any(dated.match(ln) for ln in lines), lines[-20:]
    undated, in_traceback, previous = [], False, ""
    for line in lines:
        if dated.match(line):
            in_traceback = False
        elif line.startswith("Traceback"):
            if not (in_traceback or dated.match(previous)):
                undated.append(line)
            in_traceback = True
        elif line and not in_traceback:
            undated.append(line)
        previous = line
    assert undated == [], undated[:5]
