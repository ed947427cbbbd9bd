"""Apps' containers may not open connections to this host: only the router's public ports.

The apps share one bridge with the engine's inter-container traffic off (addresses.py), so the
engine's own rules already drop traffic between two containers (as DOCKER-ISOLATION does between
bridges, for the networks of one app left from before). Traffic from a container to the host
itself (the bridge's gateway address, the host's other addresses: the controller's API, the
logger, the router's status, anything listening on 0.0.0.0) is the host's INPUT, which the engine
leaves open. Every apps' bridge is named `dapp<hex>` (the `com.docker.network.bridge.name` option), and one chain caught by
`-i dapp+` in INPUT answers new connections from them with a reset, except to the router's public
ports (apps may reach each other by their public URLs, as on Heroku). Replies to the host's own
connections (the router and health checks reach every container) are accepted.

Written with iptables/ip6tables (the engine needs them anyway); idempotent, once per process."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading

BRIDGE_PREFIX = "dapp"
CHAIN = "DEIS-APPS"
_done: set[tuple[int, ...]] = set()
_guard = threading.Lock()


class IsolationError(RuntimeError):
    pass


def bridge_name(network: str) -> str:
    """The Linux bridge of an apps' network: `dapp` + 11 hex digits (interface names stop at 15)."""
    return BRIDGE_PREFIX + hashlib.sha1(network.encode()).hexdigest()[:11]


def _run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([tool, "-w", "5", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise IsolationError(f"{tool} {' '.join(args)}: {result.stderr.strip()}")
    return result


def wanted_rules(public_ports: tuple[int, ...]) -> list[list[str]]:
    rules = [["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]]
    rules += [["-p", "tcp", "--dport", str(port), "-j", "ACCEPT"] for port in sorted(set(public_ports))]
    rules += [["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"], ["-j", "DROP"]]
    return rules


def ensure(public_ports: tuple[int, ...] = (80, 443)) -> None:
    """The chain with every port any platform on this host routes at, jumped to from INPUT.

    Ports are only ever added (several platforms, tests among them, may share one host); the
    reject rules stay last."""
    key = tuple(sorted(set(public_ports)))
    with _guard:
        if key in _done:
            return
        for tool in ("iptables", "ip6tables"):
            if shutil.which(tool) is None:
                if tool == "iptables":
                    raise IsolationError("iptables is missing: apps' containers could reach this host")
                continue
            _ensure_with(tool, key)
        _done.add(key)


def _ensure_with(tool: str, ports: tuple[int, ...]) -> None:
    if _run(tool, "-S", CHAIN, check=False).returncode != 0:
        _run(tool, "-N", CHAIN, check=False)  # made meanwhile by another process: fine
    existing = _run(tool, "-S", CHAIN).stdout
    present = {int(part.split("--dport ")[1].split()[0]) for part in existing.splitlines()
               if "--dport " in part}
    ports = tuple(sorted(set(ports) | present))
    listed = [line.split(None, 2)[2] for line in existing.splitlines() if line.startswith(f"-A {CHAIN} ")]
    wanted = [" ".join(rule) for rule in wanted_rules(ports)]
    if [_normal(x) for x in listed] != [_normal(x) for x in wanted]:
        _run(tool, "-F", CHAIN)
        for rule in wanted_rules(ports):
            _run(tool, "-A", CHAIN, *rule)
    jump = ["-i", BRIDGE_PREFIX + "+", "-j", CHAIN]
    if _run(tool, "-C", "INPUT", *jump, check=False).returncode != 0:
        _run(tool, "-I", "INPUT", "1", *jump)


def _normal(rule: str) -> str:
    """iptables -S prints `-p tcp -m tcp --dport 80`; compare without the implied match."""
    return " ".join(rule.replace("-m tcp ", "").split())
