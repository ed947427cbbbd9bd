"""Processes over their life, through the API on real Docker, HAProxy, logger and reconciler: crashes
restart and show as crashed, ps:restart, the release phase, logs kept across deploys and crashes
(and followed by `deis logs -f`), TLS by SNI from uploaded certificates, destroy leaving nothing,
and the reconciler bringing back what was removed behind the platform's back."""

import contextlib
import http.client
import socket
import ssl
import subprocess
import sys
import threading
import time

import docker
import pytest

from tests.conftest import unique
from tests.e2e.conftest import WEB, through_router
from tests.pki import self_signed


def wait_for(check, timeout=30.0, step=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return check()


def new_app(runtime, procfile=None, prefix="life"):
    user = runtime["live"].register(unique("dev"))
    app = unique(prefix)
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    build = user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"], "procfile": procfile or {"web": WEB}})
    assert build.status_code == 201, build.text
    return user, app


def logs(user, app, lines=200):
    answer = user.get(f"/v1/apps/{app}/logs", params={"log_lines": lines})
    return answer.json().splitlines() if answer.status_code == 200 else []


def processes(user, app):
    return user.get(f"/v1/apps/{app}/containers").json()["results"]


def test_a_crashing_process_restarts_shows_crashed_and_its_lines_are_kept(runtime):
    user, app = new_app(runtime, {"web": WEB, "worker": "echo working $DEIS_RELEASE; sleep 2; echo boom; exit 3"})
    assert user.post(f"/v1/apps/{app}/scale", json={"worker": 1}).status_code == 204
    crashed = wait_for(lambda: [p for p in processes(user, app) if p["type"] == "worker" and p["state"] == "crashed"])
    assert crashed, processes(user, app)
    assert wait_for(lambda: sum("boom" in line for line in logs(user, app)) >= 2, 40), logs(user, app)
    lines = logs(user, app)
    assert any(f"{app}[worker.1]: working v2" in line for line in lines)
    assert any("deis[scheduler]: worker.1 (v2) crashed: exited with code 3" in line for line in lines)
    assert any("deis[api]: " in line and "scaled" in line and "worker=1" in line for line in lines)
    # The web process is untouched by its neighbour's crashes.
    assert through_router(runtime, f"{app}.localhost").status_code == 200

    # Lines of replaced containers stay: a new release replaces web.1 and the old lines remain.
    assert user.post(f"/v1/apps/{app}/scale", json={"worker": 0}).status_code == 204
    assert user.post(f"/v1/apps/{app}/config", json={"values": {"A": "1"}}).status_code == 201
    assert wait_for(lambda: any("v3 deployed" in line for line in logs(user, app)))
    assert any(f"{app}[worker.1]: working v2" in line for line in logs(user, app))
    user.delete(f"/v1/apps/{app}")


def test_ps_restart_replaces_the_processes_and_the_app_keeps_serving(runtime):
    user, app = new_app(runtime)
    assert user.post(f"/v1/apps/{app}/scale", json={"web": 2}).status_code == 204
    before = {(p["type"], p["num"]): p["id"] for p in processes(user, app)}
    answer = user.post(f"/v1/apps/{app}/containers/web/1/restart")
    assert answer.status_code == 200, answer.text
    assert answer.rollout["phase"] == "deployed", answer.rollout
    assert [(p["type"], p["num"]) for p in answer.json()] == [("web", 1)]
    after = {(p["type"], p["num"]): p["id"] for p in processes(user, app)}
    assert set(after) == {("web", 1), ("web", 2)}
    assert after[("web", 1)] != before[("web", 1)]  # a new process in its place
    assert after[("web", 2)] == before[("web", 2)]
    everything = user.post(f"/v1/apps/{app}/containers/restart")
    assert everything.status_code == 200 and everything.rollout["phase"] == "deployed"
    assert not set(before.values()) & {p["id"] for p in processes(user, app)}
    assert through_router(runtime, f"{app}.localhost").status_code == 200
    assert user.post(f"/v1/apps/{app}/containers/nope/restart").status_code == 404
    assert user.post(f"/v1/apps/{app}/containers/web/9/restart").status_code == 404
    user.delete(f"/v1/apps/{app}")


def test_release_phase_runs_before_the_switch_and_a_failure_keeps_the_old_release(runtime):
    user, app = new_app(runtime, {"web": WEB, "release": "echo migrating $DEIS_RELEASE with $GREETING"})
    assert any("release command: migrating v2" in line for line in logs(user, app))
    assert user.post(f"/v1/apps/{app}/config", json={"values": {"GREETING": "hi"}}).status_code == 201
    assert any("release command: migrating v3 with hi" in line for line in logs(user, app))
    assert "release" not in user.get(f"/v1/apps/{app}").json()["structure"]  # never scaled

    failing = user.post(f"/v1/apps/{app}/builds", json={
        "image": runtime["image"], "procfile": {"web": WEB, "release": "echo cannot migrate; exit 2"}})
    assert failing.status_code == 201 and failing.rollout["phase"] == "failed"
    detail = failing.rollout["error"]
    assert "v4 was not deployed" in detail and "exited with code 2" in detail
    release = user.get(f"/v1/apps/{app}/releases/v4").json()
    assert release["failed"] is True and "cannot migrate" in release["failure"]
    assert {p["release"] for p in processes(user, app)} == {"v3"}
    assert through_router(runtime, f"{app}.localhost").status_code == 200
    user.delete(f"/v1/apps/{app}")


def test_deis_logs_follow_prints_new_lines(runtime, tmp_path):
    user, app = new_app(runtime)
    home = tmp_path / "home"
    (home / ".deis").mkdir(parents=True)
    (home / ".deis" / "client.json").write_text(
        f'{{"controller": "{runtime["live"].url}", "username": "{user.username}", "token": "{user.token}"}}')
    follower = subprocess.Popen([sys.executable, "-m", "deis.cli", "logs", "-f", "-a", app, "-n", "5"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    try:
        time.sleep(2)
        assert user.post(f"/v1/apps/{app}/run", json={"command": "echo marker-from-run"}).json()[0] == 0
        assert user.post(f"/v1/apps/{app}/scale", json={"web": 2}).status_code == 204
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(iter(follower.stdout.readline, "")), daemon=True)
        reader.start()
        assert wait_for(lambda: any("marker-from-run" in s for s in seen)
                        and any("scaled web=2" in s for s in seen), 30), (seen, logs(user, app))
        assert any(f"{app}[run]: marker-from-run" in s for s in seen), seen
        assert any("deis[api]:" in s and "scaled web=2" in s for s in seen), (seen, logs(user, app))
    finally:
        follower.terminate()
        follower.wait(10)
    user.delete(f"/v1/apps/{app}")


def https_get(runtime, sni, ca_pem):
    ctx = ssl.create_default_context(cadata=ca_pem)
    raw = socket.create_connection(("127.0.0.1", runtime["https_port"]), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_tls_by_sni_with_a_certificate_uploaded_through_the_api(runtime):
    user, app = new_app(runtime, prefix="tls")
    domain = f"{app}.example.com"
    cert, key, _ = self_signed(domain)
    assert user.post(f"/v1/apps/{app}/domains", json={"domain": domain}).status_code == 201
    assert user.post("/v1/certs", json={"certificate": cert, "key": key}).status_code == 201
    status, headers, body = https_get(runtime, domain, cert)  # verified against the uploaded cert
    assert status == 200 and body == b"hello from busybox\n"
    assert user.delete(f"/v1/certs/{domain}").status_code == 204
    with pytest.raises(ssl.SSLError):
        https_get(runtime, domain, cert)  # no certificate for the name any more
    user.delete(f"/v1/apps/{app}")


def test_destroy_leaves_no_container_image_route_or_log(runtime):
    client = runtime["client"]
    user = runtime["live"].register(unique("dev"))
    app = unique("gone")
    user.post("/v1/apps", json={"id": app})
    # An image built for this app alone (the builder's naming): destroy removes it.
    own = f"deis-apps/{app}:git-0123abcd"
    client.images.get(runtime["image"]).tag(own)
    try:
        assert user.post(f"/v1/apps/{app}/builds", json={"image": own, "procfile": {"web": WEB}}).status_code == 201
        ran = user.post(f"/v1/apps/{app}/run", json={"command": "echo hi"})
        assert ran.status_code == 200, ran.text
        assert logs(user, app)
        assert user.delete(f"/v1/apps/{app}").status_code == 204
        assert through_router(runtime, f"{app}.localhost").status_code == 404  # gone for users at once
        # The deployer removes its processes and image right after.
        label = f"{runtime['namespace']}.app={app}"
        assert wait_for(lambda: client.containers.list(all=True, filters={"label": label}, ignore_removed=True) == [], 20)

        def image_gone():
            try:
                client.images.get(own)
            except docker.errors.ImageNotFound:
                return True
            return False

        assert wait_for(image_gone, 10)
    finally:  # a failure above must not leave the tag behind on the machine
        with contextlib.suppress(docker.errors.APIError):  # gone already, or still in use
            client.images.remove(own, force=True)
    client.images.get(runtime["image"])  # a shared image stays
    assert not (runtime["data_dir"] / "logs" / "apps" / f"{app}.log").exists()
    assert through_router(runtime, f"{app}.localhost").status_code == 404


def test_the_reconciler_brings_back_removed_and_stopped_processes(runtime):
    client = runtime["client"]
    user, app = new_app(runtime)
    assert user.post(f"/v1/apps/{app}/scale", json={"web": 2}).status_code == 204
    client.containers.get(f"{app}.v2.web.1").remove(force=True)
    client.containers.get(f"{app}.v2.web.2").stop(timeout=1)
    assert wait_for(lambda: sorted((p["name"], p["state"]) for p in processes(user, app))
                    == [(f"{app}.v2.web.1", "up"), (f"{app}.v2.web.2", "up")], 30), processes(user, app)
    assert wait_for(lambda: through_router(runtime, f"{app}.localhost").status_code == 200)

    # A container of an app the controller does not know goes; so does one of another release.
    stray = client.containers.get(f"{app}.v2.web.2")
    labels = dict(stray.labels)
    labels[f"{runtime['namespace']}.app"] = "ghost-app"
    ghost = client.containers.run(runtime["image"], name=unique("ghost-app"), labels=labels, detach=True,
                                  command=["sleep", "60"], entrypoint=[])
    assert wait_for(lambda: not client.containers.list(all=True, filters={"id": ghost.id}, ignore_removed=True), 30)
    user.delete(f"/v1/apps/{app}")


def test_concurrent_changes_of_one_app_end_on_the_newest_release_never_a_mix(runtime):
    user, app = new_app(runtime)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda n: user.post(f"/v1/apps/{app}/config", json={"values": {"N": str(n)}}),
                                range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    newest = max(int(a.headers["Deis-Release"]) for a in answers)
    assert newest == 6
    running = processes(user, app)
    assert [(p["release"], p["state"]) for p in running] == [("v6", "up")], running
    value = user.get(f"/v1/apps/{app}/config").json()["values"]["N"]
    ran = user.post(f"/v1/apps/{app}/run", json={"command": "echo $N"}).json()
    assert ran == [0, f"{value}\n"]
    user.delete(f"/v1/apps/{app}")


def test_an_image_without_procfile_runs_its_cmd_and_is_routed(runtime):
    user = runtime["live"].register(unique("dev"))
    app = unique("image")
    user.post("/v1/apps", json={"id": app})
    assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"]}).status_code == 201
    assert user.get(f"/v1/apps/{app}").json()["structure"] == {"cmd": 1}
    assert [(p["type"], p["state"], p["port"]) for p in processes(user, app)] == [("cmd", "up", 8080)]
    answer = through_router(runtime, f"{app}.localhost")
    assert answer.status_code == 200 and answer.text == "hello from busybox\n"
    user.delete(f"/v1/apps/{app}")
