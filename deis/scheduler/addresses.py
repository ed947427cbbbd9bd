"""The apps' network and the addresses its containers get.

Every app's containers share one bridge network per namespace (`<ns>-apps`), with the engine's
inter-container communication off (`enable_icc=false`: the engine drops traffic between any two
containers of the bridge), so no app reaches another's containers; isolation.py keeps them off
this host's own ports. Why not a network per app, as before: the engine slows with the number of
networks it has, not with the number of containers (measured here, no platform running: `docker
run` until it answers, 0.25 -> 0.27 s with 500 containers on one network, 0.22 -> 0.37 s with 500
containers on 500 networks; docs/benchmarks.md), and a config change waits on the engine.

What one shared network gives up, and how it is held:
- On a network per app an address in an app's route could only lead to that app's processes. On
  a shared one the engine hands a freed address to the next container at once, whichever app's
  (and a crashed container waiting to be restarted holds none): a route not yet updated could
  lead to another app's process listening on the same port. So the platform picks every
  container's address itself, round-robin over the whole subnet (a cursor kept under a file
  lock), never one in use: a freed address comes back only after every other address of the
  subnet has been handed out once (4,093 container starts with a /20), and a container keeps its
  address across its restarts (the engine keeps a fixed address).
- Processes of one app cannot reach each other directly either (as on Heroku, where dynos talk
  through their public URL or a backing service).

The subnet: DEIS_DOCKER_APPS_SUBNET, else the first /20 of 10.240.0.0/12 that overlaps no other
network of the engine and no route of this host (a namespace each: tests run many at once).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os

AUTO_RANGE = ipaddress.ip_network("10.240.0.0/12")
AUTO_PREFIX = 20
ICC_OFF = {"com.docker.network.bridge.enable_icc": "false"}


class NoFreeSubnet(RuntimeError):
    pass


def ipv4_subnet(network: dict) -> str | None:
    """The IPv4 subnet of an engine's network, from its listing or inspection."""
    configs = (network.get("IPAM") or {}).get("Config") or []
    return next((c["Subnet"] for c in configs if c.get("Subnet") and ":" not in c["Subnet"]), None)


def host_routes(path: str = "/proc/net/route") -> list[ipaddress.IPv4Network]:
    """The IPv4 networks this host routes to (its own links and routes, the default route aside)."""
    found = []
    try:
        with open(path) as table:
            next(table, None)
            for line in table:
                fields = line.split()
                if len(fields) < 8:
                    continue
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask == 0:
                    continue
                address = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                netmask = ipaddress.IPv4Address(mask.to_bytes(4, "little"))
                found.append(ipaddress.IPv4Network(f"{address}/{netmask}", strict=False))
    except OSError:
        pass
    return found


def free_subnets(taken: list, prefix: int = AUTO_PREFIX, within=AUTO_RANGE):
    """The subnets of `within` (of `prefix` bits) that overlap none of `taken`, lowest first."""
    taken = [ipaddress.ip_network(str(t), strict=False) for t in taken]
    taken = [t for t in taken if t.version == 4]
    for subnet in within.subnets(new_prefix=prefix):
        if not any(subnet.overlaps(t) for t in taken):
            yield subnet


class Cursor:
    """The next address to hand out on one subnet: a file under a lock, shared by every process
    that starts containers (the deployer, its one-offs, tests)."""

    def __init__(self, path: str):
        self.path = path

    def take(self, subnet: str, in_use: set[str]) -> str:
        """An address of `subnet`: the first after the last one handed out that is not in use."""
        network = ipaddress.ip_network(subnet)
        hosts = network.num_addresses - 2  # less the network's own address and the broadcast
        if hosts < 2:
            raise NoFreeSubnet(f"{subnet} is too small for the apps' network")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                state = json.loads(handle.read() or "{}")
            except ValueError:
                state = {}
            index = int(state.get("next", 0)) if state.get("subnet") == subnet else 0
            for step in range(hosts - 1):  # host 1 is the bridge's own (the gateway)
                offset = 2 + (index + step) % (hosts - 1)
                address = str(network.network_address + offset)
                if address not in in_use:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps({"subnet": subnet, "next": (index + step + 1) % (hosts - 1)}))
                    handle.flush()
                    return address
        raise NoFreeSubnet(f"every address of {subnet} is in use")
