"""`deis-platform up|status|down` as `make up` runs it: idempotent, and down stops what up started,
supervisord included."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import requests

from deis.scheduler.docker import purge
from tests.conftest import LiveController, free_port
from tests.scheduler.busybox_image import ensure_image


def platform(command, env):
    return subprocess.run([sys.executable, "-m", "deis.platform", command], env=env,
                          capture_output=True, text=True, timeout=120)


def ssh_banner(port: int, wait: float = 20.0) -> bytes:
    """The first line the builder's SSH server sends, once it listens."""
    import socket

    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                return conn.recv(64)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def gone(pid: int) -> bool:
    """No such process, or a zombie (its parent has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1][:1] in ("Z", "X")
    except OSError:
        return True


def platform_env(data_dir) -> dict:
    """The platform on its defaults, but in its own data directory, ports and label namespace."""
    env = {**os.environ, "DEIS_DATA_DIR": str(data_dir), "DEIS_CONTROLLER_PORT": str(free_port()),
           "DEIS_ROUTER_PORT": str(free_port()), "DEIS_ROUTER_HTTPS_PORT": "0",
           "DEIS_DOCKER_NAMESPACE": f"deis-platform-{uuid.uuid4().hex[:8]}", "DEIS_RECONCILE_INTERVAL": "1",
           "DEIS_STOP_GRACE": "2", "DEIS_SETTLE": "1", "DEIS_BUILDER_PORT": str(free_port())}
    env.pop("DATABASE_URL", None)
    return env


def test_up_is_idempotent_and_down_stops_it(tmp_path):
    env = platform_env(tmp_path)
    port, router_port = env["DEIS_CONTROLLER_PORT"], env["DEIS_ROUTER_PORT"]
    try:
        first = platform("up", env)
        assert first.returncode == 0, first.stderr
        assert "Deis is up." in first.stdout
        assert f"http://127.0.0.1:{port}" in first.stdout and "SQLite" in first.stdout
        assert "deis register" in first.stdout
        assert f"Started the router on port {router_port}" in first.stdout
        assert "Started the logger." in first.stdout and "Started the deployer." in first.stdout
        assert "Started the builder." in first.stdout
        assert ssh_banner(int(env["DEIS_BUILDER_PORT"])).startswith(b"SSH-2.0-")
        assert f"http://<app>.localhost:{router_port}/" in first.stdout
        assert requests.get(f"http://127.0.0.1:{router_port}/", headers={"Host": "nope.localhost"}).status_code == 404
        assert (tmp_path / "controller.sqlite3").exists()
        state = platform("status", env)
        assert state.returncode == 0, state.stdout
        pids = dict(re.findall(r"^(\S+) .*\bpid (\d+)", state.stdout, re.M))
        assert set(pids) == {"controller", "router", "logger", "deployer", "builder", "supervisord"}
        # HAProxy's master is supervisord's child (in the foreground), with the router's config and pid file
        assert Path(f"/proc/{pids['router']}/stat").read_text().split(") ", 1)[1].split()[1] == pids["supervisord"]
        assert (tmp_path / "router" / "haproxy.pid").read_text().split()[0] == pids["router"]
        assert "\0-db" in Path(f"/proc/{pids['router']}/cmdline").read_bytes().decode(errors="replace")
        # ... and the deployer knows it: its Router waits for that HAProxy instead of starting one
        assert b"DEIS_ROUTER_SUPERVISED=1" in Path(f"/proc/{pids['deployer']}/environ").read_bytes().split(b"\0")

        second = platform("up", env)
        assert second.returncode == 0, second.stderr
        assert f"already up: controller http://127.0.0.1:{port} (pid {pids['controller']})" in second.stdout
        assert "Started the" not in second.stdout
        state = platform("status", env)
        assert state.returncode == 0 and "deployer    up" in state.stdout and "logger      up" in state.stdout
        assert "builder     up" in state.stdout and "supervisord up" in state.stdout
        assert re.search(rf"^router      up +RUNNING +pid {pids['router']} .* restarts 0 +port {router_port}$",
                         state.stdout, re.M)
        assert dict(re.findall(r"^(\S+) .*\bpid (\d+)", state.stdout, re.M)) == pids  # nothing restarted
        assert re.search(r"^controller  up .* restarts 0 ", state.stdout, re.M)
    finally:
        stopped = platform("down", env)
    assert "Stopped the controller." in stopped.stdout and "Stopped the router." in stopped.stdout
    assert "Stopped the deployer." in stopped.stdout and "Stopped the logger." in stopped.stdout
    assert "Stopped the builder." in stopped.stdout and "Stopped supervisord." in stopped.stdout
    assert all(gone(int(pid)) for pid in pids.values())
    from deis.platform import Supervisor

    assert Supervisor(tmp_path).leftovers() == []  # no process of its supervisord's is left
    assert platform("status", env).returncode == 1
    assert "was not running" in platform("down", env).stdout


def test_apps_come_back_after_the_platform_and_their_containers_were_stopped(tmp_path):
    """As after a reboot: everything stopped, `up` again, and the app serves as it was."""
    env = platform_env(tmp_path)
    client, namespace = docker.from_env(), env["DEIS_DOCKER_NAMESPACE"]
    image = ensure_image(client)
    router = f"http://127.0.0.1:{env['DEIS_ROUTER_PORT']}/"
    app = f"phoenix-{uuid.uuid4().hex[:6]}"  # container names are global to the engine
    try:
        assert platform("up", env).returncode == 0
        from deis.platform import Controller

        live = LiveController(Controller(data_dir=tmp_path, port=int(env["DEIS_CONTROLLER_PORT"])))
        user = live.register_admin("admin")
        assert user.post("/v1/apps", json={"id": app}).status_code == 201
        web = "exec httpd -f -p $PORT -h /www"
        assert user.post(f"/v1/apps/{app}/builds", json={"image": image, "procfile": {"web": web}}).status_code == 201
        assert user.post(f"/v1/apps/{app}/scale", json={"web": 2}).status_code == 204
        assert requests.get(router, headers={"Host": f"{app}.localhost"}, timeout=10).status_code == 200

        assert platform("down", env).returncode == 0
        for container in client.containers.list(filters={"label": f"{namespace}.managed=1"}, ignore_removed=True):
            container.stop(timeout=1)
        assert platform("up", env).returncode == 0
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                answer = requests.get(router, headers={"Host": f"{app}.localhost"}, timeout=5).status_code
            except requests.RequestException as exc:
                answer = repr(exc)
            if answer == 200:
                break
            time.sleep(0.5)
        assert answer == 200
        wanted = [(f"{app}.v2.web.1", "up"), (f"{app}.v2.web.2", "up")]
        while time.monotonic() < deadline:
            states = [(p["name"], p["state"]) for p in user.get(f"/v1/apps/{app}/containers").json()["results"]]
            if states == wanted:
                break
            time.sleep(0.5)
        assert states == wanted
    finally:
        platform("down", env)
        purge(client, namespace)
