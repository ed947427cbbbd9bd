"""Releases run through the API on real Docker behind real HAProxy: deploy an image, serve it by host
name, change config without losing the app, keep serving when a new release never becomes healthy.
"""

import time

import requests

from tests.conftest import unique
from tests.e2e.conftest import WEB, through_router


def test_deploy_serve_config_and_failed_release(runtime):
    user = runtime["live"].register(unique("dev"))
    app = unique("shop")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    assert through_router(runtime, f"{app}.localhost").status_code == 503  # routed, but no web process yet

    build = user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"], "procfile": {"web": WEB}})
    assert build.status_code == 201, build.text
    assert user.get(f"/v1/apps/{app}").json()["structure"] == {"web": 1}
    answer = through_router(runtime, f"{app}.localhost")
    assert answer.status_code == 200 and answer.text == "hello from busybox\n"
    processes = user.get(f"/v1/apps/{app}/containers").json()["results"]
    assert [(p["type"], p["num"], p["state"], p["release"]) for p in processes] == [("web", 1, "up", "v2")]

    config = user.post(f"/v1/apps/{app}/config", json={"values": {"GREETING": "hi"}})
    assert config.status_code == 201 and config.headers["Deis-Release"] == "3"
    ran = user.post(f"/v1/apps/{app}/run", json={"command": "echo $GREETING from $DEIS_RELEASE"})
    assert ran.status_code == 200 and ran.json() == [0, "hi from v3\n"]
    assert through_router(runtime, f"{app}.localhost").status_code == 200

    scaled = user.post(f"/v1/apps/{app}/scale", json={"web": 2})
    assert scaled.status_code == 204, scaled.text
    assert len(user.get(f"/v1/apps/{app}/containers/web").json()["results"]) == 2

    broken = user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"],
                                                         "procfile": {"web": "echo cannot start; exit 1"}})
    assert broken.status_code == 201  # recorded at once; the deployer finds it cannot run
    assert broken.rollout["phase"] == "failed"
    detail = broken.rollout["error"]
    assert "v4 did not become healthy" in detail
    assert "Last lines of its output:\n  cannot start" in detail  # the process's own words
    release = user.get(f"/v1/apps/{app}/releases/v4").json()
    assert release["failed"] is True and release["state"] == "failed" and "cannot start" in release["failure"]
    assert through_router(runtime, f"{app}.localhost").status_code == 200  # v3 still serves
    assert {p["release"] for p in user.get(f"/v1/apps/{app}/containers").json()["results"]} == {"v3"}

    assert user.post(f"/v1/apps/{app}/domains", json={"domain": f"{app}.example.com"}).status_code == 201
    assert through_router(runtime, f"{app}.example.com").status_code == 200

    assert user.delete(f"/v1/apps/{app}").status_code == 204
    assert through_router(runtime, f"{app}.localhost").status_code == 404


def test_no_request_dropped_while_deploying_configuring_rolling_back_and_scaling(runtime):
    """Load goes through the router the whole time, on fresh connections and on keep-alive ones,
    GETs and HEADs; every request is answered 200, with no retry at all: route changes never
    reload the router, so no connection is ever closed under a client (issue 12). (POSTs with
    bodies go through hundreds of route changes in tests/router: busybox's httpd answers a POST to
    a file with 501 and closes without reading the body, a reset of its own.)"""
    import http.client
    import threading
    import time

    user = runtime["live"].register(unique("steady"))
    app = unique("steady")
    user.post("/v1/apps", json={"id": app})
    assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"],
                                                     "procfile": {"web": WEB}}).status_code == 201
    statuses, stop = [], threading.Event()
    port, host = runtime["http_port"], f"{app}.localhost"

    def load(keep_alive: bool):
        connection = None
        deadline = time.monotonic() + 120  # bounded even if the test body fails
        while not stop.is_set() and time.monotonic() < deadline and len(statuses) < 20000:
            if connection is None or not keep_alive:
                if connection is not None:
                    connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("HEAD" if len(statuses) % 3 == 0 else "GET", "/", headers={"Host": host})
                answer = connection.getresponse()
                answer.read()
                statuses.append(answer.status)
            except (OSError, http.client.HTTPException) as exc:
                kind = "keep-alive" if keep_alive else "fresh"
                statuses.append(f"{kind} connection: {exc!r}")
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    modes = (False, True, True)  # one client on fresh connections, two on keep-alive ones
    threads = [threading.Thread(target=load, args=(keep_alive,)) for keep_alive in modes]
    worker = runtime["router"].api.raw("show info").split("Pid: ", 1)[1].split()[0]
    for thread in threads:
        thread.start()
    try:
        assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"],
                                                         "procfile": {"web": WEB}}).status_code == 201
        assert user.post(f"/v1/apps/{app}/config", json={"values": {"A": "1"}}).status_code == 201
        assert user.post(f"/v1/apps/{app}/releases/rollback", json={}).status_code == 201
        assert user.post(f"/v1/apps/{app}/scale", json={"web": 3}).status_code == 204
        assert user.post(f"/v1/apps/{app}/scale", json={"web": 1}).status_code == 204
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failures = [s for s in statuses if s != 200]
    assert len(statuses) > 100, len(statuses)
    assert failures == [], f"{len(failures)} of {len(statuses)} requests failed: {failures[:5]}"
    # The same HAProxy worker served it all: no reload.
    assert runtime["router"].api.raw("show info").split("Pid: ", 1)[1].split()[0] == worker
    assert [p["release"] for p in user.get(f"/v1/apps/{app}/containers").json()["results"]] == ["v5"]
    user.delete(f"/v1/apps/{app}")


def test_a_one_off_is_a_job_whose_output_streams_and_that_holds_no_request(runtime):
    user = runtime["live"].register(unique("dev"))
    app = unique("jobs")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"], "procfile": {"web": WEB}}).rollout
    job = user.post(f"/v1/apps/{app}/jobs", json={"command": "echo first; sleep 2; echo second; exit 4"})
    assert job.status_code == 201, job.text
    uuid, offset, printed, states = job.json()["uuid"], 0, "", set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = user.get(f"/v1/apps/{app}/jobs/{uuid}?offset={offset}").json()
        printed += got["output"]
        offset = got["offset"]
        states.add((got["state"], "first" in printed, "second" in printed))
        if got["state"] not in ("pending", "running"):
            break
        time.sleep(0.1)
    assert got["state"] == "failed" and got["exit_code"] == 4
    assert printed == "first\nsecond\n"
    assert ("running", True, False) in states  # the first line was read while it still ran
    assert user.delete(f"/v1/apps/{app}").status_code == 204


def test_maintenance_mode_and_the_allow_list_through_the_router(runtime):
    """Workflow's settings and whitelist, through the API, the router's reconciler and HAProxy:
    each change is served when its request returns; the processes keep running meanwhile."""
    user = runtime["live"].register(unique("ops"))
    app = unique("ops")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"],
                                                     "procfile": {"web": WEB}}).status_code == 201
    host = f"{app}.localhost"
    assert through_router(runtime, host).status_code == 200
    assert user.post(f"/v1/apps/{app}/settings/", json={"maintenance": True}).status_code == 201
    answer = through_router(runtime, host)
    assert answer.status_code == 503 and "maintenance" in answer.text
    assert user.post(f"/v1/apps/{app}/settings/", json={"maintenance": False}).status_code == 201
    assert through_router(runtime, host).status_code == 200
    assert user.post(f"/v1/apps/{app}/whitelist/", json={"addresses": ["10.0.0.0/8"]}).status_code == 201
    assert through_router(runtime, host).status_code == 403  # this host's 127.0.0.1 is not in it
    assert user.post(f"/v1/apps/{app}/whitelist/", json={"addresses": ["127.0.0.1"]}).status_code == 201
    assert through_router(runtime, host).status_code == 200
    assert user.delete(f"/v1/apps/{app}/whitelist/", json={"addresses": ["127.0.0.1/32", "10.0.0.0/8"]}).status_code == 204
    assert through_router(runtime, host).status_code == 200
    assert [p["state"] for p in user.get(f"/v1/apps/{app}/containers").json()["results"]] == ["up"]
    user.delete(f"/v1/apps/{app}")
