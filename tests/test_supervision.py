"""The platform's processes under `deis-platform up`'s supervisord: one killed comes back by
itself, and `up` in a deploy storm (every request worker busy) leaves the controller alone."""

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.test_platform import gone, platform, platform_env, ssh_banner

PROGRAMS = ("controller", "router", "logger", "deployer", "builder")
BACK_WITHIN = {"router": 5}  # seconds; the others 15


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("supervised")
    env = {**platform_env(data_dir), "DEIS_CONTROLLER_WORKERS": "2"}
    started = platform("up", env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield env, data_dir
    finally:
        platform("down", env)


def status_of(env) -> dict[str, dict]:
    """`deis-platform status` read back: name -> word (up, down, ...), pid, restarts."""
    rows = {}
    for line in platform("status", env).stdout.splitlines():
        name, word = line.split()[:2]
        pid, restarts = re.search(r"\bpid (\d+)", line), re.search(r"\brestarts (\d+)", line)
        rows[name] = {"word": word, "pid": int(pid[1]) if pid else None,
                      "restarts": int(restarts[1]) if restarts else None}
    return rows


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def serves(name: str, env: dict, old_workers: list[int]) -> bool:
    """Does the new process do its job: the controller answers (from new workers: the killed
    master's orphans are gone), the router too (HAProxy's worker of the killed master is gone and
    the new one serves its files), the builder's SSH server greets."""
    if name == "controller":
        if not all(gone(worker) for worker in old_workers):
            return False
        try:
            return requests.get(f"http://127.0.0.1:{env['DEIS_CONTROLLER_PORT']}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    if name == "router":
        if not all(gone(worker) for worker in old_workers):
            return False
        from deis.router import Router

        port = env["DEIS_ROUTER_PORT"]
        try:
            unknown = requests.get(f"http://127.0.0.1:{port}/", headers={"Host": "nope.localhost"}, timeout=1)
        except requests.RequestException:
            return False
        return unknown.status_code == 404 and Router(Path(env["DEIS_DATA_DIR"]), http_port=int(port),
                                                     install=False).serving()
    if name == "builder":
        try:
            return ssh_banner(int(env["DEIS_BUILDER_PORT"]), wait=0).startswith(b"SSH-2.0-")
        except OSError:
            return False
    return True


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_killed_process_is_back_by_itself(running, name):
    env, _ = running
    before = status_of(env)[name]
    assert before["word"] == "up" and before["pid"], before
    old_workers = children(before["pid"]) if name in ("controller", "router") else []
    assert old_workers or name not in ("controller", "router")

    started = time.monotonic()
    os.kill(before["pid"], signal.SIGKILL)
    after, deadline = before, started + 30
    while time.monotonic() < deadline:
        after = status_of(env)[name]  # about 0.15 s a call
        if after["word"] == "up" and after["pid"] not in (None, before["pid"]) and serves(name, env, old_workers):
            break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    print(f"{name}: SIGKILL, back by itself in {seconds:.1f} s")
    assert after["word"] == "up" and after["pid"] not in (None, before["pid"]), f"{name} not back within 30 s"
    assert seconds < BACK_WITHIN.get(name, 15)
    assert after["restarts"] == before["restarts"] + 1
    assert status_of(env)["supervisord"]["word"] == "up"


def masters(data_dir: Path) -> list[int]:
    """The live HAProxy masters of this data directory's router (its workers share the command
    line: a master is one whose parent is not one of them)."""
    conf = str(data_dir / "router" / "haproxy.cfg")
    found: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((proc / "stat").read_text().split(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if "haproxy" in title and conf in title and not gone(int(proc.name)):
            found[int(proc.name)] = ppid
    return sorted(pid for pid, ppid in found.items() if ppid not in found)


def test_the_deployers_router_never_starts_a_second_haproxy(running):
    """The deployer starts the router when it finds it down (Router.start); supervisord restarts
    it at the same time. Supervised (DEIS_ROUTER_SUPERVISED, which `up` gives its programs), a
    Router waits for supervisord's HAProxy instead; one that is not (an older deployer) loses to
    the router program, which takes over. Either way one HAProxy serves, supervisord's."""
    from deis.router import Router, RouterError

    env, data_dir = running
    port = int(env["DEIS_ROUTER_PORT"])
    for supervised in (True, False):
        before = status_of(env)["router"]
        assert before["word"] == "up", before
        os.kill(before["pid"], signal.SIGKILL)
        deployers = Router(data_dir, http_port=port, https_port=None, install=False, supervised=supervised)
        try:
            deployers.start()
        except RouterError as exc:  # the unsupervised one may lose the race for the port
            print(f"supervised={supervised}: {exc}")
        deadline, after = time.monotonic() + 20, before
        while time.monotonic() < deadline:
            after = status_of(env)["router"]
            if after["word"] == "up" and after["pid"] != before["pid"] and masters(data_dir) == [after["pid"]]:
                break
            time.sleep(0.1)
        assert after["word"] == "up" and after["pid"] != before["pid"], after
        assert masters(data_dir) == [after["pid"]]
        assert deployers.master_pid() == after["pid"]
        assert requests.get(f"http://127.0.0.1:{port}/", headers={"Host": "nope.localhost"}, timeout=5).status_code == 404


def test_route_changes_and_reloads_reach_the_supervised_haproxy(running):
    """A route change by the deployer's Router reaches supervisord's HAProxy at runtime (the same
    worker serves it); a reload (its master CLI's `reload`) is taken in place: same master."""
    from deis.router import Route, Router
    from deis.router.runtime_api import RuntimeAPI

    env, data_dir = running
    port = int(env["DEIS_ROUTER_PORT"])
    pid = status_of(env)["router"]["pid"]
    routed = Router(data_dir, http_port=port, https_port=None, install=False, supervised=True)
    worker = routed.api.raw("show info").split("Pid: ", 1)[1].split()[0]
    result = routed.update({"supervised": Route("supervised", ["supervised.localhost"], [("127.0.0.1", 9)])})
    assert result.ok and not result.reloaded, result
    assert routed.api.raw("show info").split("Pid: ", 1)[1].split()[0] == worker
    assert requests.get(f"http://127.0.0.1:{port}/", headers={"Host": "supervised.localhost"}, timeout=5).status_code == 503
    RuntimeAPI(routed.root / "master.sock").raw("reload")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and routed.api.raw("show info").split("Pid: ", 1)[1].split()[0] == worker:
        time.sleep(0.05)
    assert routed.api.raw("show info").split("Pid: ", 1)[1].split()[0] != worker  # a new worker
    assert status_of(env)["router"]["pid"] == pid and routed.master_pid() == pid  # reloaded, not restarted
    assert routed.serving()
    routed.update({"supervised": None})  # (the deployer's resync removes it too: no such app)


class SlowRegistration:
    """A real request that holds a request thread: the body of a registration trickles in."""

    def __init__(self, port: int):
        name = f"slow-{uuid.uuid4().hex[:8]}"
        self.body = f"username={name}&password=s3cret-pass&email={name}%40example.com".encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"POST /v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                          + f"Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body[:1])
        self.sent = 1

    def trickle(self) -> None:
        if self.sent < len(self.body) - 1:
            self.sock.sendall(self.body[self.sent:self.sent + 1])
            self.sent += 1

    def finish(self) -> bytes:
        self.sock.sendall(self.body[self.sent:])
        return status_line(self.sock)


def status_line(sock: socket.socket) -> bytes:
    """The first line of the answer on `sock`, which is closed then."""
    with sock, sock.makefile("rb") as answer:
        return answer.readline().rstrip(b"\r\n")


def test_up_in_a_deploy_storm_leaves_the_controller_alone(running):
    env, data_dir = running
    port, workers = int(env["DEIS_CONTROLLER_PORT"]), int(env["DEIS_CONTROLLER_WORKERS"])
    before = status_of(env)["controller"]
    pid = before["pid"]
    held = [SlowRegistration(port) for _ in range(workers)]
    waiting = None
    try:
        time.sleep(0.5)
        # Every worker's one request thread is taken: an ordinary request waits for one to free.
        waiting = socket.create_connection(("127.0.0.1", port), timeout=1)
        waiting.sendall(b"GET /v1/apps HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        with pytest.raises(socket.timeout):
            waiting.recv(1)

        begun = time.monotonic()
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        print(f"/healthz with all {workers} workers busy: {time.monotonic() - begun:.3f} s")
        assert health.status_code == 200 and health.text == "OK"
        assert health.headers["X-Deis-Workers"] == "busy"  # answered by a busy worker's main loop

        for slow in held:
            slow.trickle()
        again = platform("up", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"Deis is already up: controller http://127.0.0.1:{port} (pid {pid})." in again.stdout
        assert "Started the" not in again.stdout
        assert status_of(env)["controller"] == before  # same pid, no restart

        # The held requests were not cut off, and the one that waited was served once a worker freed.
        assert [slow.finish() for slow in held] == [b"HTTP/1.1 201 Created"] * workers
        waiting.settimeout(30)
        assert status_line(waiting) == b"HTTP/1.1 401 Unauthorized"
    finally:
        for slow in held:
            slow.sock.close()
        if waiting is not None:
            waiting.close()


def test_up_over_an_older_config_moves_the_routers_reconciler_into_the_deployer(running):
    """A supervisord started by an `up` of before session 9 (a `routes` program, a deployer without
    `--routes`): `up` stops and removes `routes`, starts the deployer again with its new command
    (else nothing would serve the routes), and leaves the controller and the router running."""
    import sys

    from deis.platform import Program, Supervisor, controller_from_env, programs

    env, data_dir = running
    supervisor = Supervisor(data_dir)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        current = programs(controller_from_env())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    older = [Program(p.name, [a for a in p.argv if a != "--routes"], p.stopwaitsecs, p.stopsignal) for p in current]
    older.insert(2, Program("routes", [sys.executable, "-m", "deis.controller", "route"]))
    supervisor.conf.write_text(supervisor.config(older))
    [[added, changed, _]] = supervisor.rpc.reloadConfig()
    assert added == ["routes"] and "deployer" in changed
    for name in ("deployer",):  # as the older `up` ran it
        supervisor.rpc.stopProcessGroup(name, True)
        supervisor.rpc.removeProcessGroup(name)
        supervisor.rpc.addProcessGroup(name)
    supervisor.rpc.addProcessGroup("routes")
    for name in ("deployer", "routes"):
        supervisor.rpc.startProcess(name, True)
    before = status_of(env)
    assert supervisor.processes()["routes"]["statename"] == "RUNNING" and "--routes" not in Path(
        f"/proc/{before['deployer']['pid']}/cmdline").read_bytes().decode().split("\0")

    again = platform("up", env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Stopped the routes (a program of an older supervisord config)." in again.stdout
    assert "Stopped the deployer to start it with its new command." in again.stdout
    after = status_of(env)
    assert "routes" not in supervisor.processes()
    assert after["deployer"]["word"] == "up" and after["deployer"]["pid"] != before["deployer"]["pid"]
    assert "--routes" in Path(f"/proc/{after['deployer']['pid']}/cmdline").read_bytes().decode().split("\0")
    assert after["controller"]["pid"] == before["controller"]["pid"]
    assert after["router"]["pid"] == before["router"]["pid"]
    assert "Stopped the" not in platform("up", env).stdout  # the config is current: nothing to do


def test_a_data_dir_too_deep_for_a_unix_socket_gets_a_short_socket_path(tmp_path):
    from deis.platform import Supervisor

    assert Supervisor(tmp_path).socket_path == tmp_path / "run" / "supervisor.sock"
    deep = Supervisor(tmp_path / ("d" * 120))
    assert len(str(deep.socket_path)) <= 107 and deep.socket_path != Supervisor(tmp_path / ("e" * 120)).socket_path
    assert f"file={deep.socket_path}" in deep.config([]) and f"serverurl=unix://{deep.socket_path}" in deep.config([])
