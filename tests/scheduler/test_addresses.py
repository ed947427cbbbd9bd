"""The apps' network (deis/scheduler/addresses.py): the subnet it takes and the addresses its
containers get - round-robin, so a freed address is not handed to the next container."""

from __future__ import annotations

import ipaddress
import threading
import uuid

import pytest

from deis.scheduler import addresses


def test_free_subnets_skip_every_network_they_would_overlap():
    taken = ["10.240.0.0/24", "10.240.32.0/19", "172.17.0.0/16", "fd00::/64"]
    first = list(addresses.free_subnets(taken))[:3]
    assert [str(s) for s in first] == ["10.240.16.0/20", "10.240.64.0/20", "10.240.80.0/20"]


def test_host_routes_are_read_from_the_kernels_table(tmp_path):
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
                     "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                     "br0\t0000F00A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")
    assert addresses.host_routes(str(table)) == [ipaddress.ip_network("10.240.0.0/16")]


def test_the_cursor_hands_out_every_address_once_before_any_again(tmp_path):
    cursor = addresses.Cursor(str(tmp_path / "ns.addresses"))
    given = [cursor.take("10.240.0.0/29", set()) for _ in range(6)]
    # .0 is the network, .1 the bridge, .7 the broadcast: .2-.6, then .2 again
    assert given == ["10.240.0.2", "10.240.0.3", "10.240.0.4", "10.240.0.5", "10.240.0.6", "10.240.0.2"]
    assert cursor.take("10.240.0.0/29", {"10.240.0.3", "10.240.0.4"}) == "10.240.0.5"
    with pytest.raises(addresses.NoFreeSubnet):
        cursor.take("10.240.0.0/29", {f"10.240.0.{n}" for n in range(2, 7)})


def test_two_processes_never_take_the_same_address(tmp_path):
    path, taken, guard = str(tmp_path / "ns.addresses"), [], threading.Lock()

    def take():
        address = addresses.Cursor(path).take("10.240.0.0/20", set())
        with guard:
            taken.append(address)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(taken)) == 40


def test_apps_share_one_network_where_they_cannot_reach_each_other_and_addresses_are_not_reused(tmp_path):
    """Through the real engine: two apps' processes on the namespace's apps network (ICC off), a
    removed process's address not given to the next one, the host reaching every process."""
    import docker

    from deis.scheduler import ReleaseSpec
    from deis.scheduler.docker import DockerScheduler, purge
    from tests.scheduler.busybox_image import ensure_image

    client = docker.from_env()
    image = ensure_image(client)
    namespace = f"deis-test-{uuid.uuid4().hex[:8]}"
    sched = DockerScheduler(client=client, namespace=namespace, grace=1, settle=0.5, lock_dir=str(tmp_path))
    web = "exec httpd -f -p $PORT -h /www"
    try:
        for app in ("one", "two"):
            sched.scale(ReleaseSpec(app=app, version=1, image=image, procfile={"web": web}, env={"PORT": "8080"}),
                        {"web": 1})
        one, two = (sched.endpoints(app)[0] for app in ("one", "two"))
        network = client.networks.get(f"{namespace}-apps")
        assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        assert {c.name for c in network.containers} == {"one.v1.web.1", "two.v1.web.1"}
        assert one.address != two.address
        container = client.containers.get("two.v1.web.1")
        reached = container.exec_run(["sh", "-c", f"echo | nc -w 2 {one.address} 8080; echo rc=$?"])
        assert b"rc=1" in reached.output  # another app's process: no connection
        sched.scale(ReleaseSpec(app="one", version=1, image=image, procfile={"web": web}, env={"PORT": "8080"}),
                    {"web": 0})
        sched.scale(ReleaseSpec(app="three", version=1, image=image, procfile={"web": web}, env={"PORT": "8080"}),
                    {"web": 1})
        three = sched.endpoints("three")[0]
        assert three.address not in (one.address, two.address)  # one's freed address is not handed on
    finally:
        purge(client, namespace)
