"""Two tenants on one platform (issue 11): neither can reach, read, run nor break the other's apps,
nor the host. Through the real parts: the controller with the Docker scheduler, the deployer,
HAProxy, the logger, a user-namespace-remapped dockerd; an attacker acts from inside its own app's
container, as a `deis run` would."""

import os
import socket
import ssl
import stat
import threading
import time
from pathlib import Path

import pytest

from deis.scheduler.userns import container_root
from tests.conftest import unique
from tests.e2e.conftest import WEB, through_router
from tests.e2e.test_runtime_lifecycle import https_get, wait_for
from tests.pki import self_signed


@pytest.fixture(scope="module")
def tenants(runtime):
    """Alice and Bob, each with an app at web=1 serving through the router."""
    made = {}
    for name in ("alice", "bob"):
        user = runtime["live"].register(unique(name))
        app = unique(f"{name[0]}app")
        assert user.post("/v1/apps", json={"id": app}).status_code == 201
        build = user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"], "procfile": {"web": WEB}})
        assert build.status_code == 201, build.text
        assert build.rollout["phase"] == "deployed", build.rollout
        made[name] = (user, app)
    return made


def container_of(runtime, app):
    found = runtime["client"].containers.list(
        filters={"label": [f"{runtime['namespace']}.app={app}", f"{runtime['namespace']}.type=web"]})
    assert len(found) == 1, found
    return found[0]


def address(container):
    return next(iter(container.attrs["NetworkSettings"]["Networks"].values()))


def shell(container, script, timeout=20):
    """Run `script` in the container as its own process would (same user), bounded in time."""
    code, out = container.exec_run(["timeout", str(timeout), "sh", "-c", script], demux=False)
    return code, (out or b"").decode(errors="replace")


def connects(container, host, port):
    code, _ = shell(container, f"nc -w 2 {host} {port} </dev/null", timeout=5)
    return code == 0


class Listener:
    """A TCP service of this host on every address, as the controller or any daemon could be."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.5)
        while self.sock.fileno() >= 0:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self.sock.fileno() < 0:
                    return
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


# --- 1. network -------------------------------------------------------------------------------------

def test_an_app_cannot_reach_another_apps_container_nor_this_hosts_services(runtime, tenants):
    (_, a_app), (_, b_app) = tenants["alice"], tenants["bob"]
    a, b = container_of(runtime, a_app), container_of(runtime, b_app)
    a_ip, a_port = address(a)["IPAddress"], int(a.labels[f"{runtime['namespace']}.port"])
    gateway = address(b)["Gateway"]
    # The host reaches both (this is how the router and the health checks reach them).
    assert through_router(runtime, f"{a_app}.localhost").status_code == 200
    # Alice's own container reaches itself; Bob's cannot reach it, directly or by its bridge.
    assert connects(a, a_ip, a_port)
    assert not connects(b, a_ip, a_port)
    listener = Listener()
    try:
        assert not connects(b, gateway, listener.port)  # a daemon of this host on 0.0.0.0
        host_ip = socket.gethostbyname(socket.gethostname())
        if not host_ip.startswith("127."):
            assert not connects(b, host_ip, listener.port)
        assert listener.accepted == 0
        # Bob may still use the router's public port: Alice's app by its public URL, as on Heroku.
        code, out = shell(b, f"wget -q -O - --header 'Host: {a_app}.localhost' http://{gateway}:{runtime['http_port']}/")
        assert code == 0, out
    finally:
        listener.close()
    # The Docker API is a unix socket only: no TCP port of the engine answers.
    assert not connects(b, gateway, 2375) and not connects(b, gateway, 2376)


def test_the_routers_runtime_api_is_a_private_unix_socket(runtime, tenants):
    """The router has no status page on its public port any more: its runtime API is a unix
    socket of mode 0600 under the data directory, which no container can reach."""
    router = runtime["router"]
    info = (router.root / "admin.sock").stat()
    assert oct(info.st_mode & 0o777) == "0o600", oct(info.st_mode)
    _, b_app = tenants["bob"]
    b = container_of(runtime, b_app)
    gateway = address(b)["Gateway"]
    code, out = shell(b, f"wget -q -S -O - --header 'Host: router.deis.invalid' "
                         f"http://{gateway}:{runtime['http_port']}/generation 2>&1")
    assert code != 0 and "404" in out, out
    assert router.serving()


# --- 2. limits --------------------------------------------------------------------------------------

def test_every_app_container_is_confined(runtime, tenants):
    _, b_app = tenants["bob"]
    b = container_of(runtime, b_app)
    host = b.attrs["HostConfig"]
    assert host["Memory"] == 512 * 2**20 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == 256 and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CapDrop"] == ["ALL"] and "NET_RAW" not in host["CapAdd"] and "SYS_ADMIN" not in host["CapAdd"]
    assert host["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
    code, out = shell(b, "grep -E \"^(NoNewPrivs|CapEff)\" /proc/self/status")
    assert "NoNewPrivs:\t1" in out, out
    # NET_RAW is gone: no raw sockets (ping needs one), so no spoofing on the bridge.
    code, out = shell(b, "ping -c 1 -W 1 127.0.0.1 2>&1")
    assert code != 0, out


def test_a_fork_bomb_stops_at_the_pids_limit_and_the_app_keeps_serving(runtime, tenants):
    _, b_app = tenants["bob"]
    b = container_of(runtime, b_app)
    code, out = shell(b, "n=0; while [ $n -lt 400 ]; do sleep 30 & n=$((n+1)); done 2>&1; echo spawned", timeout=30)
    assert "can't fork" in out or "Resource temporarily unavailable" in out or code != 0, out[-500:]
    pids = int(open(f"/sys/fs/cgroup/system.slice/docker-{b.id}.scope/pids.current").read()) \
        if os.path.exists(f"/sys/fs/cgroup/system.slice/docker-{b.id}.scope/pids.current") else None
    assert pids is None or pids <= 256
    shell(b, "pkill sleep; true")
    assert wait_for(lambda: through_router(runtime, f"{b_app}.localhost").status_code == 200, 20)


def test_root_in_a_container_is_not_root_on_the_host(runtime, tenants):
    _, b_app = tenants["bob"]
    b = container_of(runtime, b_app)
    uid, _ = container_root(runtime["client"])
    assert uid >= 100000, "dockerd runs without userns-remap (scripts/docker.sh configures it)"
    pid = b.attrs["State"]["Pid"]
    real = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")][0]
    assert int(real.split()[1]) >= uid  # the app's init runs as an unprivileged uid of this host
    code, out = shell(b, "id -u")
    assert out.strip() == "0"  # ... though it is root inside (an image app's default)


def test_process_quotas_are_refused_before_anything_starts(runtime, tenants):
    _, b_app = tenants["bob"]
    bob = tenants["bob"][0]
    before = len(runtime["client"].containers.list(filters={"label": f"{runtime['namespace']}.app={b_app}"}))
    for counts in ({"web": 101}, {"web": 60, "worker": 41}, {"web": 10**6}):
        answer = bob.post(f"/v1/apps/{b_app}/scale", json=counts)
        assert answer.status_code in (400, 403), (counts, answer.text)
    assert len(runtime["client"].containers.list(
        filters={"label": f"{runtime['namespace']}.app={b_app}"})) == before
    assert through_router(runtime, f"{b_app}.localhost").status_code == 200


# --- 3. images --------------------------------------------------------------------------------------

def test_a_tenant_cannot_deploy_another_tenants_or_the_platforms_images(runtime, tenants):
    (alice, a_app), (bob, b_app) = tenants["alice"], tenants["bob"]
    own = f"deis-apps/{a_app}:git-0badc0de"
    runtime["client"].images.get(runtime["image"]).tag(own)
    try:
        for image in (own, "deis/run:bookworm-1", "127.0.0.1:5000/x:1", "169.254.169.254/x:1"):
            answer = bob.post(f"/v1/apps/{b_app}/builds", json={"image": image, "procfile": {"web": WEB}})
            assert answer.status_code == 400, (image, answer.text)
        assert alice.post(f"/v1/apps/{a_app}/builds", json={"image": own, "procfile": {"web": WEB}}).status_code == 201
        # Back to the shared test image before its tag goes (later tests deploy Alice's app again).
        assert alice.post(f"/v1/apps/{a_app}/builds",
                          json={"image": runtime["image"], "procfile": {"web": WEB}}).status_code == 201
    finally:
        runtime["client"].images.remove(own, force=True)


# --- 4. certificates -------------------------------------------------------------------------------

def test_a_tenants_certificate_is_never_served_for_another_tenants_domain(runtime, tenants):
    (alice, a_app), (bob, b_app) = tenants["alice"], tenants["bob"]
    domain = f"{a_app}.example.com"
    assert alice.post(f"/v1/apps/{a_app}/domains", json={"domain": domain}).status_code == 201
    # Bob uploads a wildcard and a certificate naming Alice's host, with an odd common name.
    wild, wild_key, _ = self_signed("*.example.com")
    named, named_key, _ = self_signed(f"{b_app}.example.com", sans=(domain,))
    for cert, key in ((wild, wild_key), (named, named_key)):
        assert bob.post("/v1/certs", json={"certificate": cert, "key": key}).status_code in (201, 400)
    for cert in (wild, named):
        with pytest.raises(ssl.SSLError):
            https_get(runtime, domain, cert)  # the router never answers Alice's host with Bob's
    # Alice's own certificate is served, and her deploys still go through.
    own, own_key, _ = self_signed(domain)
    assert alice.post("/v1/certs", json={"certificate": own, "key": own_key}).status_code == 201
    status, _, body = https_get(runtime, domain, own)
    assert status == 200 and body == b"hello from busybox\n"
    change = alice.post(f"/v1/apps/{a_app}/config", json={"values": {"AFTER_CERTS": "1"}})
    assert change.status_code == 201 and change.rollout["phase"] == "deployed", (change.rollout["error"], change.rollout["steps"])
    # Bob cannot delete Alice's certificate; he only sees his own.
    assert bob.delete(f"/v1/certs/{domain}").status_code == 404
    assert domain not in {c["common_name"] for c in bob.get("/v1/certs").json()["results"]}
    status, _, _ = https_get(runtime, domain, own)
    assert status == 200


# --- 8. destroy -------------------------------------------------------------------------------------

def test_destroy_removes_everything_and_the_next_app_of_that_name_starts_empty(runtime):
    client, namespace = runtime["client"], runtime["namespace"]
    user = runtime["live"].register(unique("carol"))
    app = unique("capp")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    noisy = "while true; do echo still-here-$DEIS_RELEASE; sleep 0.2; done & exec httpd -f -p $PORT -h /www"
    assert user.post(f"/v1/apps/{app}/builds", json={"image": runtime["image"], "procfile": {"web": noisy}}).rollout[
        "phase"] == "deployed"
    domain = f"{app}.example.com"
    cert, key, _ = self_signed(domain)
    assert user.post(f"/v1/apps/{app}/domains", json={"domain": domain}).status_code == 201
    assert user.post("/v1/certs", json={"certificate": cert, "key": key}).status_code == 201
    log = Path(runtime["data_dir"]) / "logs" / "apps" / f"{app}.log"
    assert wait_for(lambda: log.exists() and "still-here" in log.read_text(), 20)
    assert user.delete(f"/v1/apps/{app}").status_code == 204
    label = f"{namespace}.app={app}"
    assert wait_for(lambda: client.containers.list(all=True, filters={"label": label}, ignore_removed=True) == [], 20)
    assert wait_for(lambda: not client.networks.list(names=[f"{namespace}-{app}"]), 10)
    assert user.get("/v1/certs").json()["results"] == []  # its certificate went with it
    assert through_router(runtime, f"{app}.localhost").status_code == 404
    assert through_router(runtime, domain).status_code == 404
    time.sleep(2)  # late output of the old processes must not bring the log back
    assert not log.exists()
    # The same name again, by another tenant: nothing of the first app is there.
    other = runtime["live"].register(unique("dave"))
    assert wait_for(lambda: other.post("/v1/apps", json={"id": app}).status_code == 201, 20)
    assert other.get(f"/v1/apps/{app}/logs").status_code in (200, 204)
    assert "still-here" not in (other.get(f"/v1/apps/{app}/logs").text or "")
    assert other.get(f"/v1/apps/{app}/domains").json()["results"] == []
    assert other.delete(f"/v1/apps/{app}").status_code == 204


# --- 6. files ---------------------------------------------------------------------------------------

def umask_of(pid: int) -> int:
    line = [x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Umask:")][0]
    return int(line.split()[1], 8)


def test_the_data_directory_database_and_secrets_are_private_and_processes_make_private_files(runtime):
    data_dir = Path(runtime["data_dir"])
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("controller.sqlite3", "controller.sqlite3-wal", "secret_key", "builder_key"):
        path = data_dir / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    # The controller (gunicorn's arbiter and workers) and the deployer: umask 077.
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    ours = []
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"DEIS_DATA_DIR={data_dir}".encode() in environ.split(b"\0"):
            ours.append(pid)
    assert len(ours) >= 3, ours  # arbiter, a worker, the deployer, the logger
    assert {pid: umask_of(pid) for pid in ours} == {pid: 0o077 for pid in ours}
