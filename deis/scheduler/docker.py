"""The Docker backend: one container per process on the local Docker Engine.

Containers
- Named `<app>.v<N>.<type>.<num>` (one-offs `<app>.v<N>.run.<random>`), labelled
  `<ns>.managed=1`, `<ns>.app`, `<ns>.release` (`v7`), `<ns>.type`, `<ns>.num`, `<ns>.port` and, for
  one-offs, `<ns>.oneoff=1`. `<ns>` is the constructor's `namespace` ("deis" by default): the backend
  only ever sees and touches containers of its namespace, which is how tests isolate themselves.
- Environment: the config values, then PORT, DEIS_APP, DEIS_RELEASE, WORKFLOW_RELEASE and, with a
  commit, SOURCE_VERSION and GIT_SHA. PORT is 5000 for buildpack slugs; for image apps the PORT config
  var, else the lowest TCP port the image EXPOSEs, else 5000.
- Commands: a buildpack slug gets the Procfile command as its only argument and keeps the run image's
  entrypoint (`deis-launch` sources .profile.d and runs it under `bash -c`). An image app gets the
  entrypoint `["bash", "-c"]` and the command (the image must have bash, as on Heroku). Without a
  Procfile the image's own ENTRYPOINT/CMD runs as type `cmd`.
- Limits: spec.memory[type] ("512M", "1G", "512MB"), else the platform default (limits.py), becomes
  the container's memory limit (no swap beyond it), spec.cpu[type] its CPU shares; every container
  also gets limits.py's pids limit, cut capabilities, no-new-privileges and rotated json-file logs.
  Tags are accepted and ignored: a single Docker Engine has no placement; they will constrain
  placement on Swarm.
- `--init` (tini) is PID 1 so SIGTERM reaches the process and zombies are reaped.
- Restart policy: `no` while a new process is health-checked (so an exit is final and its code
  known), `unless-stopped` once it passed; Docker restarts crashes with its own backoff (100 ms,
  doubling, up to a minute, reset after 10 s of uptime). The policy is also the durable mark of a
  rollout's progress: a container still at `no` was never promoted, so whoever finds it after a
  crash of the process that started it (the reconciler) knows it serves nothing yet.
- Networks: every app's containers share one bridge network of the namespace (`<ns>-apps`) with
  the engine's inter-container traffic off, and each container gets an address the platform picks
  round-robin (addresses.py: why one network, and how a route never leads to another app's
  process); its bridge is `dapp<hex>`, whose connections to this host isolation.py refuses but to
  the router's public ports. Networks of one app (`<ns>-<app>`, from before) are still read and
  removed with their app. `network=` names an operator's network instead.

States: `starting` (not yet promoted / web not yet accepting TCP / non-web up less than `settle`
s), `up`, `crashed` (restarting, restarted less than `crash_window` s ago - Docker's backoff resets
after 10 s of uptime -, or exited with a code other than 0 or 143), `down` (stopped, created,
paused). `last_exit` says when and how a process last died (`oom`, the exit code when known).

Health: web processes (and `cmd`, an image's own CMD, which is routed like web) must accept TCP on PORT at the container's address (the host routes to
Docker's bridge, no published ports); with HEALTHCHECK_URL set, a GET of it must answer 2xx/3xx
(HEALTHCHECK_TIMEOUT s per try, HEALTHCHECK_INITIAL_DELAY s before the first). Other types must stay
up `settle` s. Everything must pass within `deploy_timeout` s (plus the initial delay). Then the new
processes must stay up `min_uptime` s, so one that dies within its first second (out of memory once
it loads) never replaces a working release: they are routed at once, with the processes serving
before as the router's backups, which take any request a dying new one cannot; a death fails the
deploy and routes back.

Locks: deploy/scale/restart/destroy/reconcile of one app hold a per-app lock: a threading lock (the
same for every instance in the process) plus an flock on `<lock_dir>/<ns>.<app>.lock`, so they also
queue across controller worker processes on one host.

One-off timeouts: the container is killed and run() returns exit code 124 (as timeout(1) does) with a
line saying so appended to the output.

Usage (`usage`): one sample of the engine's stats of each running container (the engine's API, so
the same on cgroup v1 and v2, local or remote), taken in parallel: about a second in all.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Callable

from deis import rules

from . import (
    Convergence,
    DeployError,
    Endpoint,
    LockBusy,
    Process,
    ReleaseSpec,
    Restart,
    Scheduler,
    SchedulerError,
    SwitchRoutes,
    merge_report,
    new_report,
)
from . import addresses, isolation
from .health import Check, tcp_open
from .limits import ContainerLimits

TIMEOUT_EXIT_CODE = 124
# Types that receive HTTP (and are health-checked on PORT): `web`, and `cmd`, an image's own CMD
# when it has no Procfile (as Deis v1 routed Dockerfile and image apps).
ROUTED = ("web", "cmd")
START_PARALLEL = 6  # containers created and started at once by a rollout
RUN_OUTPUT_LIMIT = 1 << 20  # characters of a one-off's output run() returns (the newest)
ONEOFF_LEFTOVER_AFTER = 60.0  # seconds after a one-off finished that the reconciler removes it
DEFAULT_PORT = 5000
ALIVE = ("running", "restarting")

# Shared by every instance in the process (get_scheduler() makes a new one per request).
_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_HELD = threading.local()     # (namespace, app) keys whose file lock this thread holds
_LOCKS_GUARD = threading.Lock()
_RETIRING: set[str] = set()   # container names switched away from, being stopped
_MARKS_GUARD = threading.Lock()
_NETWORKS_GUARD = threading.Lock()
_APPS_NETWORKS: dict[str, str] = {}  # the apps' network of a namespace -> its subnet, once made


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def memory_limit(value: str | None) -> str | None:
    """Docker's form of a memory limit (deis.rules.docker_memory), as a SchedulerError when bad."""
    try:
        return rules.docker_memory(value)
    except ValueError as exc:
        raise SchedulerError(str(exc)) from None


def stats_usage(stats: dict) -> tuple[float, int]:
    """(CPU percent, memory bytes in use) of one sample of Docker's stats, as `docker stats` works
    them out: the CPU time between the sample and the one before over the host's, times its CPUs
    (100.0 = one CPU busy all the time); the memory without the inactive page cache (cgroup v1's
    total_inactive_file, v2's inactive_file), which the kernel drops before it runs out."""
    cpu, before = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (before.get("cpu_usage") or {}).get("total_usage", 0)
    host = cpu.get("system_cpu_usage", 0) - before.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    percent = used / host * cpus * 100.0 if before.get("system_cpu_usage") and host > 0 and used > 0 else 0.0
    memory = stats.get("memory_stats") or {}
    in_use, detail = int(memory.get("usage") or 0), memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in detail:
            if 0 <= detail[key] < in_use:
                in_use -= int(detail[key])
            break
    return round(percent, 2), in_use


def docker_timestamp(raw: str) -> tuple[str, str]:
    """Docker's RFC 3339 nano timestamp -> (sort key, ISO 8601 with microseconds and +00:00)."""
    stamp = raw.rstrip("Z")
    whole, _, frac = stamp.partition(".")
    frac = (frac + "000000000")[:9]
    return f"{whole}.{frac}", f"{whole}.{frac[:6]}+00:00"


def _endpoint_key(endpoint: Endpoint) -> tuple:
    return (endpoint.type, endpoint.num, endpoint.address)


def _started_at(attrs: dict, key: str = "StartedAt") -> float | None:
    raw = attrs.get("State", {}).get(key) or ""
    if not raw or raw.startswith("0001-"):
        return None
    whole, _, frac = raw.rstrip("Z").partition(".")
    try:
        base = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    return base + float("0." + (frac or "0"))


def _finished_at(attrs: dict) -> float | None:
    return _started_at(attrs, "FinishedAt")


def _created_at(attrs: dict) -> float | None:
    return _started_at({"State": {"Created": attrs.get("Created") or ""}}, "Created")


def _tags(wanted) -> str:
    """`web.1, web.2, worker.1` of (type, num) pairs."""
    return ", ".join(f"{t}.{n}" for t, n in wanted)


class _Tail:
    """The newest `limit` characters of a stream of text."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.size = limit, [], 0
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        with self._lock:
            self.parts.append(text)
            self.size += len(text)
            while self.size - len(self.parts[0]) >= self.limit and len(self.parts) > 1:
                self.size -= len(self.parts.pop(0))

    def text(self) -> str:
        with self._lock:
            return "".join(self.parts)[-self.limit:]


@dataclass
class _Proc:
    """One of our containers, read from its labels and inspect data."""

    container: object
    app: str
    release: str
    type: str
    num: str
    port: int
    oneoff: bool

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def attrs(self) -> dict:
        return self.container.attrs

    @property
    def status(self) -> str:
        return self.attrs.get("State", {}).get("Status", "unknown")

    @property
    def version(self) -> int:
        try:
            return int(self.release.lstrip("v"))
        except ValueError:
            return -1

    @property
    def key(self) -> tuple[str, int]:
        return (self.type, int(self.num) if self.num.isdigit() else 0)

    @property
    def tag(self) -> str:
        return f"{self.type}.{self.num}"

    @property
    def promoted(self) -> bool:
        """Passed its rollout's health check (see the module doc: the restart policy marks it)."""
        policy = (self.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
        return (policy.get("Name") or "no") != "no"


def _docker_errors(method):
    """Engine failures become SchedulerError (the API answers 503 with the reason)."""

    @wraps(method)
    def wrapper(self, *args, **kwargs):
        import docker.errors
        import requests.exceptions

        try:
            return method(self, *args, **kwargs)
        except SchedulerError:
            raise
        except docker.errors.APIError as exc:
            raise SchedulerError(f"Docker Engine refused: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SchedulerError(f"Docker Engine unavailable: {exc}") from exc

    return wrapper


class _AppEvents:
    """The app names of an engine event stream (see DockerScheduler.events)."""

    def __init__(self, stream, app_label: str, oneoff_label: str):
        self.stream, self._app, self._oneoff = stream, app_label, oneoff_label

    def __iter__(self):
        for event in self.stream:
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            if attributes.get(self._oneoff) != "1" and attributes.get(self._app):
                yield attributes[self._app]

    def close(self) -> None:
        self.stream.close()


class DockerScheduler(Scheduler):
    name = "docker"

    def __init__(self, client=None, namespace: str | None = None, grace: float | None = None,
                 deploy_timeout: float | None = None, settle: float | None = None,
                 network: str | None = None, lock_dir: str | None = None, run_timeout: float | None = None,
                 health_timeout: float = 5.0, log_lines: int = 50, poll: float = 0.2, init: bool = True,
                 restart_policy: str = "unless-stopped", min_uptime: float | None = None,
                 crash_window: float = 10.0, limits: ContainerLimits | None = None):
        """Defaults come from the environment (DEIS_DOCKER_NAMESPACE, DEIS_STOP_GRACE,
        DEIS_DEPLOY_TIMEOUT, DEIS_SETTLE, DEIS_DOCKER_NETWORK, DEIS_RUN_TIMEOUT, DEIS_MIN_UPTIME) so
        the platform can configure the backend without code; tests pass small values."""
        if restart_policy == "no":
            raise ValueError("restart_policy 'no' is the mark of processes not yet promoted")
        self._client = client
        self.namespace = namespace or os.environ.get("DEIS_DOCKER_NAMESPACE", "deis")
        self.grace = grace if grace is not None else _env_number("DEIS_STOP_GRACE", 30)
        self.deploy_timeout = deploy_timeout if deploy_timeout is not None else _env_number("DEIS_DEPLOY_TIMEOUT", 120)
        self.settle = settle if settle is not None else _env_number("DEIS_SETTLE", 3)
        self.network = network or os.environ.get("DEIS_DOCKER_NETWORK") or None  # None: the apps' network
        self.apps_subnet = os.environ.get("DEIS_DOCKER_APPS_SUBNET") or None  # None: a free /20 (addresses.py)
        self.run_timeout = run_timeout if run_timeout is not None else _env_number("DEIS_RUN_TIMEOUT", 1800)
        self.lock_dir = lock_dir or os.path.join(tempfile.gettempdir(), "deis-scheduler-locks")
        self.health_timeout = health_timeout
        self.log_lines = log_lines
        self.poll = poll
        self.init = init
        self.restart_policy = restart_policy
        self.min_uptime = min_uptime if min_uptime is not None else _env_number("DEIS_MIN_UPTIME", 1.0)
        self.crash_window = crash_window
        self.limits = limits or ContainerLimits.from_environment()
        # The only ports of this host an app's container may connect to (isolation.py).
        self.public_ports = tuple(port for port in (int(os.environ.get(name) or default) for name, default in
                                  (("DEIS_ROUTER_PORT", 80), ("DEIS_ROUTER_HTTPS_PORT", 443))) if port > 0)

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=max(120, int(self.grace) + 60), max_pool_size=32)
        return self._client

    @property
    def _grace_seconds(self) -> int:
        return max(0, round(self.grace))

    def label(self, key: str) -> str:
        return f"{self.namespace}.{key}"

    @contextmanager
    def locked(self, app: str, blocking: bool = True):
        """Hold the app's lock (re-entrant in one thread): the controller holds it across reading
        the desired release and running it, so a reconcile never sees a half-made decision.
        `blocking=False` raises LockBusy at once when another change holds it."""
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault((self.namespace, app), threading.RLock())
        if not lock.acquire(blocking=blocking):
            raise LockBusy(f"{app} is being changed")
        try:
            held = getattr(_HELD, "keys", None)
            if held is None:
                held = _HELD.keys = set()
            key = (self.namespace, app)
            if key in held:  # this thread holds the file lock already
                yield
                return
            os.makedirs(self.lock_dir, exist_ok=True)
            with open(os.path.join(self.lock_dir, f"{self.namespace}.{app}.lock"), "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise LockBusy(f"{app} is being changed") from None
                held.add(key)
                try:
                    yield
                finally:
                    held.discard(key)
        finally:
            lock.release()

    _locked = locked

    def _list(self, app: str | None = None) -> list[_Proc]:
        filters = [f"{self.label('managed')}=1"]
        if app is not None:
            filters.append(f"{self.label('app')}={app}")
        procs = []
        for container in self.client.containers.list(all=True, filters={"label": filters}, ignore_removed=True):
            labels = container.labels or {}
            try:
                port = int(labels.get(self.label("port"), DEFAULT_PORT))
            except ValueError:
                port = DEFAULT_PORT
            procs.append(_Proc(container, labels.get(self.label("app"), ""), labels.get(self.label("release"), ""),
                               labels.get(self.label("type"), ""), labels.get(self.label("num"), ""), port,
                               labels.get(self.label("oneoff")) == "1"))
        return sorted(procs, key=lambda p: (p.key, p.version))

    def _procs(self, app: str) -> list[_Proc]:
        return [p for p in self._list(app) if not p.oneoff]

    def network_name(self, app: str) -> str:
        return self.network or f"{self.namespace}-apps"

    def _ensure_network(self, app: str) -> tuple[str, str | None]:
        """The network the app's processes join, and its subnet when the platform picks the
        addresses (the apps' network, made on the first process of the namespace)."""
        name = self.network_name(app)
        if self.network:
            return name, None
        with _NETWORKS_GUARD:  # the engine lets two networks have one name: make it once
            if name not in _APPS_NETWORKS:
                isolation.ensure(self.public_ports)
                _APPS_NETWORKS[name] = self._apps_network(name)
            return name, _APPS_NETWORKS[name]

    def _apps_network(self, name: str) -> str:
        """The subnet of the apps' network `name`, made now if the engine has none of that name."""
        import docker.errors
        import docker.types

        subnets = {n.get("Name"): addresses.ipv4_subnet(n) for n in self.client.api.networks()}
        if subnets.get(name):
            return subnets[name]
        if self.apps_subnet:
            candidates = [self.apps_subnet]
        else:
            taken = [s for s in subnets.values() if s] + addresses.host_routes()
            candidates = [str(subnet) for subnet in addresses.free_subnets(taken)]
        for subnet in candidates:
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            try:
                self.client.networks.create(
                    name, driver="bridge", check_duplicate=True, ipam=ipam,
                    options={"com.docker.network.bridge.name": isolation.bridge_name(name), **addresses.ICC_OFF},
                    labels={self.label("managed"): "1"})
                return subnet
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # made meanwhile by another process
                    return addresses.ipv4_subnet(self.client.api.inspect_network(name))
                if "overlap" in str(exc).lower() and not self.apps_subnet:
                    continue  # taken meanwhile (another namespace's): the next one
                raise
        raise SchedulerError(f"no free /{addresses.AUTO_PREFIX} in {addresses.AUTO_RANGE} for the apps' network "
                             "(DEIS_DOCKER_APPS_SUBNET names one)")

    def _next_address(self, name: str, subnet: str) -> str:
        """An address of the apps' network for a new container (addresses.Cursor)."""
        containers = self.client.api.inspect_network(name).get("Containers") or {}
        in_use = {str(c.get("IPv4Address", "")).split("/")[0] for c in containers.values()}
        cursor = addresses.Cursor(os.path.join(self.lock_dir, f"{self.namespace}.addresses"))
        return cursor.take(subnet, in_use)

    def _remove_network(self, app: str) -> None:
        """The app's own network, where one is left from before the apps shared one."""
        import docker.errors

        if self.network:
            return
        for network in self.client.networks.list(names=[f"{self.namespace}-{app}"]):
            try:
                network.remove()
            except docker.errors.NotFound:
                pass

    def _address(self, proc: _Proc) -> str:
        networks = (proc.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        for name in (self.network_name(proc.app), f"{self.namespace}-{proc.app}"):  # or its own, from before
            if (networks.get(name) or {}).get("IPAddress"):
                return networks[name]["IPAddress"]
        return ""

    def _image_config(self, image: str) -> dict:
        import docker.errors

        if not image:
            raise DeployError("The release has no image to run yet (push a build first).")
        try:
            return self.client.images.get(image).attrs.get("Config") or {}
        except docker.errors.ImageNotFound:
            pass
        try:
            self.client.images.pull(image)
            return self.client.images.get(image).attrs.get("Config") or {}
        except docker.errors.DockerException as exc:
            raise DeployError(f"Image {image} is not available: {exc}") from exc

    def port(self, spec: ReleaseSpec) -> int:
        """PORT of `spec`'s processes (see the module doc)."""
        if spec.buildpack:
            return DEFAULT_PORT
        configured = str(spec.env.get("PORT", "")).strip()
        if configured.isdigit() and 0 < int(configured) < 65536:
            return int(configured)
        exposed = self._image_config(spec.image).get("ExposedPorts") or {}
        ports = []
        for key in exposed:
            number, _, proto = key.partition("/")
            if number.isdigit() and proto in ("", "tcp"):
                ports.append(int(number))
        ports.sort()
        return ports[0] if ports else DEFAULT_PORT

    def environment(self, spec: ReleaseSpec, port: int) -> dict[str, str]:
        env = {str(k): str(v) for k, v in spec.env.items() if v is not None}
        env.update(PORT=str(port), DEIS_APP=spec.app, DEIS_RELEASE=spec.release, WORKFLOW_RELEASE=spec.release)
        if spec.sha:
            env.update(SOURCE_VERSION=spec.sha, GIT_SHA=spec.sha)
        return env

    def _command(self, spec: ReleaseSpec, command: str | None) -> dict:
        if command is None:
            return {}
        if spec.buildpack:
            return {"command": [command]}
        return {"entrypoint": ["bash", "-c"], "command": [command]}

    def _create(self, spec: ReleaseSpec, ptype: str, num: str, port: int, command: str | None,
                oneoff: bool = False, restart: str = "no", name: str | None = None):
        import docker.errors

        try:
            return self._create_on_network(spec, ptype, num, port, command, oneoff, restart, name)
        except docker.errors.NotFound as exc:
            if "network" not in str(exc).lower():
                raise
        # The apps' network was removed behind this process's back (an operator, a purge): again.
        with _NETWORKS_GUARD:
            _APPS_NETWORKS.pop(self.network_name(spec.app), None)
        return self._create_on_network(spec, ptype, num, port, command, oneoff, restart, name)

    def _create_on_network(self, spec: ReleaseSpec, ptype: str, num: str, port: int, command: str | None,
                           oneoff: bool, restart: str, name: str | None):
        import docker.errors

        name = name or f"{spec.app}.{spec.release}.{ptype}.{num}"
        labels = {self.label("managed"): "1", self.label("app"): spec.app, self.label("release"): spec.release,
                  self.label("type"): ptype, self.label("num"): str(num), self.label("port"): str(port)}
        if oneoff:
            labels[self.label("oneoff")] = "1"
        network, subnet = self._ensure_network(spec.app)
        kwargs = dict(name=name, environment=self.environment(spec, port), labels=labels, detach=True,
                      init=self.init, network=network, restart_policy={"Name": restart},
                      **self._command(spec, command))
        if subnet:
            address = self._next_address(network, subnet)
            kwargs["networking_config"] = {network: self.client.api.create_endpoint_config(ipv4_address=address)}
        kwargs.update(self.limits.create_options(memory_limit(spec.memory.get(ptype))))
        if spec.cpu.get(ptype):
            kwargs["cpu_shares"] = int(spec.cpu[ptype])
        try:
            return self.client.containers.create(spec.image, **kwargs)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
        # A leftover of the same name (a rollout interrupted by a crash of the controller).
        self._remove_now(name)
        return self.client.containers.create(spec.image, **kwargs)

    def _remove_now(self, name_or_container) -> None:
        import docker.errors

        try:
            container = name_or_container
            if isinstance(container, str):
                container = self.client.containers.get(container)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise

    def _stop_and_remove(self, procs: list[_Proc]) -> None:
        """SIGTERM, SIGKILL after the grace period, then remove; all in parallel."""
        import docker.errors

        if not procs:
            return
        with _MARKS_GUARD:
            _RETIRING.update(p.name for p in procs)

        def retire(proc):
            try:
                proc.container.stop(timeout=self._grace_seconds)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError:
                pass
            self._remove_now(proc.container)

        try:
            with ThreadPoolExecutor(max_workers=min(16, len(procs))) as pool:
                list(pool.map(retire, procs))
        finally:
            with _MARKS_GUARD:
                _RETIRING.difference_update(p.name for p in procs)

    def _tail(self, proc: _Proc, lines: int) -> list[str]:
        try:
            raw = proc.container.logs(stdout=True, stderr=True, tail=lines)
        except Exception:  # noqa: BLE001 - logs are a courtesy in an error path
            return []
        return raw.decode("utf-8", "replace").splitlines()

    def _wanted(self, spec: ReleaseSpec, structure: dict) -> list[tuple[str, str]]:
        """(type, num) of every process `structure` asks for; types the release lacks are skipped
        (the controller validates structures against the Procfile)."""
        types = set(spec.process_types())
        wanted = []
        for ptype, count in sorted((structure or {}).items()):
            if ptype in types and ptype != "release":
                wanted.extend((ptype, str(num)) for num in range(1, int(count or 0) + 1))
        return wanted

    def _command_for(self, spec: ReleaseSpec, ptype: str) -> str | None:
        return spec.procfile.get(ptype) if spec.procfile else None

    # -- health ---------------------------------------------------------------------------------

    def _await_healthy(self, spec: ReleaseSpec, procs: list[_Proc], port: int) -> None:
        """Wait until every proc is healthy; raise DeployError naming the first that cannot be.
        Web: an HTTP answer on PORT (see health.Check); others: up `settle` s by the engine's clock."""
        check = Check.from_env(spec.env, self.health_timeout)
        started = time.monotonic()
        deadline = started + check.initial_delay + self.deploy_timeout
        waiting = {p.name: p for p in procs}
        reasons: dict[str, str] = {}
        while waiting:
            for name, proc in list(waiting.items()):
                proc.container.reload()
                if proc.status in ("exited", "dead"):
                    self._fail(spec, proc, self._exit_reason(proc))
                if proc.status != "running":
                    continue
                if proc.type not in ROUTED:
                    if self._least_uptime([proc]) >= self.settle:
                        del waiting[name]
                    continue
                if time.monotonic() - started < check.initial_delay:
                    continue
                ok, what = check.probe(self._address(proc), port)
                if not ok:
                    reasons[name] = f"{proc.tag} {what}"
                    continue
                del waiting[name]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                proc = next(iter(waiting.values()))
                reason = reasons.get(proc.name) or f"{proc.tag} did not start"
                self._fail(spec, proc, f"{reason} within {self.deploy_timeout:g} s")
            # A few processes are checked often (a deploy serves sooner); many, less often, so
            # the checks do not load the engine that is starting them.
            time.sleep(max(0.02, min(self.poll, 0.02 * len(waiting))))

    @staticmethod
    def _exit_reason(proc: _Proc) -> str:
        state = proc.attrs.get("State", {})
        return f"{proc.tag} exited with code {state.get('ExitCode')}" + \
            (" (out of memory)" if state.get("OOMKilled") else "")

    def _fail(self, spec: ReleaseSpec, proc: _Proc, reason: str):
        raise DeployError(f"{reason} (release {spec.release} of {spec.app} was not deployed)",
                          logs=self._tail(proc, self.log_lines))

    # -- rollout: deploy and scale are the same convergence ------------------------------------

    def _rollout(self, request: Convergence) -> None:
        """Make `structure` of `spec` run: keep this release's live processes that are still wanted
        (and not covered by the restart), start and health-check the missing ones, switch, then
        retire everything else."""
        spec, structure, switch = request.spec, request.structure, request.switch
        wanted = self._wanted(spec, structure)
        procs = self._procs(spec.app)
        keep = {}
        for proc in procs:  # sorted oldest first: a replacement wins over the one it replaces
            if proc.release == spec.release and (proc.type, proc.num) in wanted and proc.status in ALIVE \
                    and proc.promoted and not self._restart_covers(request.restart, proc):
                keep[(proc.type, proc.num)] = proc
        retire = [p for p in procs if (p.type, p.num) not in keep or keep[(p.type, p.num)] is not p]
        missing = [w for w in wanted if w not in keep]
        # Dead processes of this very release, and ones a rollout cut short never promoted, hold
        # the names the new ones need; they serve nothing.
        for proc in [p for p in retire if p.release == spec.release and (p.status not in ALIVE or not p.promoted)]:
            self._remove_now(proc.container)
            retire.remove(proc)
        # Live ones a restart replaces keep their name until they are retired.
        taken = {p.name for p in retire}

        new: list[_Proc] = []
        if missing:
            port = self.port(spec)
            guard = threading.Lock()
            request.say("starting", f"starting {_tags(missing)} of {spec.release}; health check: "
                        f"{Check.from_env(spec.env, self.health_timeout).describe(port)}")

            def start(wanted: tuple[str, str]) -> None:
                ptype, num = wanted
                name = f"{spec.app}.{spec.release}.{ptype}.{num}"
                if name in taken:
                    name += f".{secrets.token_hex(3)}"
                container = self._create(spec, ptype, num, port, self._command_for(spec, ptype), name=name)
                with guard:  # recorded before it starts, so a failure anywhere removes it
                    new.append(_Proc(container, spec.app, spec.release, ptype, num, port, False))
                container.start()

            def start_all(which: list[tuple[str, str]]) -> None:
                # The engine creates and starts containers faster several at a time.
                if which:
                    with ThreadPoolExecutor(max_workers=min(START_PARALLEL, len(which))) as pool:
                        list(pool.map(start, which))

            try:
                # Web traffic switches once the web processes answer: they start first; the other
                # types start after the switch (on 2 CPUs their starts slowed the web's) and are
                # checked during the probation, failing the rollout (routing back) should they fail.
                start_all([w for w in missing if w[0] in ROUTED])
                with guard:
                    web = sorted((p for p in new if p.type in ROUTED), key=lambda p: p.key)
                rest = [w for w in missing if w[0] not in ROUTED]

                def started_others() -> list[_Proc]:
                    start_all(rest)
                    return sorted((p for p in new if p.type not in ROUTED), key=lambda p: p.key)

                self._await_healthy(spec, web, port)
                request.say("switching", "routing to the new processes")
                self._switch_on_probation(request, list(keep.values()), web, retire, port, started_others, bool(rest))
                for proc in new:
                    proc.container.update(restart_policy={"Name": self.restart_policy})
                    proc.container.reload()
                    if proc.status == "exited":  # crashed between the check and the policy change
                        proc.container.start()
            except BaseException:
                for proc in new:
                    self._remove_now(proc.container)
                raise
        elif switch is not None:
            self._switch(spec, switch, self._endpoints_of(list(keep.values())))
        if retire:
            request.say("retiring", f"stopping {_tags([(p.type, p.num) for p in retire])}"
                        f" of {', '.join(sorted({p.release for p in retire}))}")
        self._stop_and_remove(retire)

    @staticmethod
    def _restart_covers(restart: Restart | None, proc: _Proc) -> bool:
        return restart is not None and restart.covers(proc.type, proc.num, _created_at(proc.attrs))

    def _endpoints_of(self, procs: list[_Proc]) -> list[Endpoint]:
        routed = [p for p in procs if p.type in ROUTED]
        for proc in routed:
            proc.container.reload()
        return sorted((self._endpoint(p) for p in routed if p.status == "running"), key=_endpoint_key)

    def _switch(self, spec: ReleaseSpec, switch: SwitchRoutes, endpoints: list[Endpoint],
                backups: list[Endpoint] | None = None) -> None:
        try:
            switch(endpoints, backups or [])
        except Exception as exc:
            raise DeployError(f"Switching routes to release {spec.release} of {spec.app} failed: {exc}; "
                              "the processes running before keep serving.") from exc

    def _switch_on_probation(self, request: Convergence, keep: list[_Proc], web: list[_Proc],
                             retire: list[_Proc], port: int, started_others, with_others: bool) -> None:
        """Route to the healthy new web processes at once, with the ones serving before as the
        router's backups (they take the requests should a new one fail), while the new processes
        must stay up `min_uptime` s and the other types (`started_others()`, started meanwhile)
        pass their checks; then drop the backups. A failure meanwhile fails the rollout and the
        route goes back to what served before: it never replaced the running release."""
        spec, switch = request.spec, request.switch
        before = self._endpoints_of(keep + [p for p in retire if p.promoted])
        after = self._endpoints_of(keep + web)
        backups = [e for e in before if _endpoint_key(e) not in {_endpoint_key(a) for a in after}]
        if not with_others and self._least_uptime(web) >= self.min_uptime:
            backups = []  # up long enough already (a slow check): one switch, as without probation
        if switch is not None:
            self._switch(spec, switch, after, backups)
        try:
            others = started_others()
            self._await_healthy(spec, others, port)
            self._await_uptime(spec, web + others)
        except BaseException:
            if switch is not None and backups:
                try:
                    switch(before, [])
                except Exception:  # noqa: BLE001 - the backups serve meanwhile; the reconciler re-routes
                    pass
            raise
        if switch is not None and backups:
            self._switch(spec, switch, after)

    def _await_uptime(self, spec: ReleaseSpec, procs: list[_Proc]) -> None:
        """Every proc up `min_uptime` s since the engine started it, else DeployError."""
        while True:
            for proc in procs:
                proc.container.reload()
                if proc.status in ("exited", "dead"):
                    self._fail(spec, proc, f"{self._exit_reason(proc)} within {self.min_uptime:g} s of starting")
            if self._least_uptime(procs) >= self.min_uptime:
                return
            time.sleep(min(self.poll, 0.05))

    @staticmethod
    def _least_uptime(procs: list[_Proc]) -> float:
        """Seconds the youngest of `procs` has run (as of their last reload), by the engine's clock."""
        starts = [_started_at(p.attrs) for p in procs]
        return min((time.time() - s if s else 0.0) for s in starts) if starts else float("inf")

    def _endpoint(self, proc: _Proc) -> Endpoint:
        return Endpoint(app=proc.app, type=proc.type, num=int(proc.num), address=self._address(proc), port=proc.port)

    # -- the Scheduler verbs --------------------------------------------------------------------

    @_docker_errors
    def converge(self, request: Convergence) -> None:
        with self._locked(request.spec.app):
            self._rollout(request)

    def scale(self, spec: ReleaseSpec, structure: dict, switch: SwitchRoutes | None = None) -> None:
        """Add or remove processes of the running release (the same convergence as a deploy)."""
        self.converge(Convergence(spec, structure, switch))

    @_docker_errors
    def run(self, spec: ReleaseSpec, command: str, timeout: float | None = None,
            output: Callable[[str], None] | None = None) -> tuple[int, str]:
        """A one-off container of `spec` running `command`; removed afterwards. On timeout it is
        killed and the exit code is 124. What it prints goes to `output` as it comes (read from
        the engine's log stream); the returned output is its last RUN_OUTPUT_LIMIT characters."""
        import docker.errors

        timeout = self.run_timeout if timeout is None else timeout
        port = self.port(spec)
        container = self._create(spec, "run", secrets.token_hex(4), port, command, oneoff=True)
        kept = _Tail(RUN_OUTPUT_LIMIT)

        def follow():
            try:
                for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
                    text = chunk.decode("utf-8", "replace")
                    kept.add(text)
                    if output is not None:
                        output(text)
            except Exception:  # noqa: BLE001 - the container went; what was read is kept
                pass

        try:
            container.start()
            reader = threading.Thread(target=follow, name=f"run-{container.name}", daemon=True)
            reader.start()
            deadline = time.monotonic() + timeout
            timed_out = False
            while True:
                container.reload()
                if container.status in ("exited", "dead"):
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    try:
                        container.kill()
                    except docker.errors.APIError:
                        pass
                    break
                time.sleep(min(self.poll, 0.1))
            reader.join(timeout=10)  # the stream ends with the container
            if timed_out:
                note = ("" if kept.text().endswith("\n") or not kept.text() else "\n") + \
                    f"Timed out after {timeout:g} s: `{command}` was killed.\n"
                kept.add(note)
                if output is not None:
                    output(note)
                return TIMEOUT_EXIT_CODE, kept.text()
            container.reload()
            return int(container.attrs["State"].get("ExitCode", 1)), kept.text()
        finally:
            self._remove_now(container)

    def _describe(self, proc: _Proc) -> Process:
        state = proc.attrs.get("State", {})
        return Process(type=proc.type, num=int(proc.num) if proc.num.isdigit() else proc.num,
                       state=self._state_of(proc), release=proc.release, name=proc.name,
                       id=proc.container.id[:12], started=state.get("StartedAt"),
                       restarts=proc.attrs.get("RestartCount", 0), exit_code=state.get("ExitCode"),
                       last_exit=self._last_exit(proc), address=self._address(proc), port=proc.port)

    def _last_exit(self, proc: _Proc) -> dict | None:
        """When and how the process last died: {"at", "reason": "oom" | "exited", "exit_code"}.
        Docker keeps the time and the OOM flag across restarts but resets the exit code to 0 on
        each start; while it runs again the code is read from the engine's recent events."""
        state = proc.attrs.get("State", {})
        finished = _finished_at(proc.attrs)
        if finished is None:
            return None
        code = state.get("ExitCode") if proc.status != "running" else self._exit_code_at(proc, finished)
        return {"at": state.get("FinishedAt"), "reason": "oom" if state.get("OOMKilled") else "exited",
                "exit_code": code}

    def _exit_code_at(self, proc: _Proc, finished: float) -> int | None:
        try:
            until = min(int(finished) + 2, int(time.time()))  # a future `until` would wait for it
            for event in self.client.events(since=int(finished) - 1, until=until, decode=True,
                                            filters={"container": proc.container.id, "event": "die"}):
                code = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode")
                return int(code) if code is not None and str(code).isdigit() else None
        except Exception:  # noqa: BLE001 - a courtesy; the engine may have forgotten
            return None
        return None

    def _state_of(self, proc: _Proc) -> str:
        state = proc.attrs.get("State", {})
        status = proc.status
        if status == "restarting" or state.get("Restarting"):
            return "crashed"
        if status in ("exited", "dead"):
            return "down" if state.get("ExitCode") in (0, 143) and status == "exited" else "crashed"
        if status != "running":
            return "down"
        if not proc.promoted:
            return "starting"
        started = _started_at(proc.attrs)
        uptime = time.time() - started if started else 0.0
        if proc.attrs.get("RestartCount", 0) and uptime < max(self.settle, self.crash_window):
            return "crashed"  # it died a moment ago, and may again: Docker's backoff is not reset yet
        if proc.type in ROUTED:
            return "up" if tcp_open(self._address(proc), proc.port, timeout=0.5) else "starting"
        return "up" if uptime >= self.settle else "starting"

    @_docker_errors
    def processes(self, app: str) -> list[Process]:
        return [self._describe(p) for p in self._procs(app)]

    @_docker_errors
    def endpoints(self, app: str) -> list[Endpoint]:
        """Running web processes accepting TCP, of the newest release being served (processes of a
        rollout not yet switched to, and ones being retired, are left out)."""
        healthy = self._serving_web(app, accepting=True)
        if not healthy:
            return []
        newest = max(p.version for p in healthy)
        return sorted((self._endpoint(p) for p in healthy if p.version == newest), key=_endpoint_key)

    @_docker_errors
    def booting(self, app: str) -> list[str]:
        """Running, promoted web processes not accepting TCP yet (just started or restarted)."""
        return [p.name for p in self._serving_web(app, accepting=False)]

    def _serving_web(self, app: str, accepting: bool) -> list[_Proc]:
        """The app's running, promoted web processes (not being retired) that do (or do not)
        accept TCP on their port."""
        web = [p for p in self._procs(app) if p.type in ROUTED and p.status == "running" and p.promoted
               and p.name not in _RETIRING]
        return [p for p in web if tcp_open(self._address(p), p.port, timeout=0.5) == accepting]

    @_docker_errors
    def logs(self, app: str, lines: int) -> list[str]:
        """The last `lines` lines of all the app's containers, merged by time:
        `<ISO timestamp> <app>[<type>.<num>]: <message>`."""
        import docker.errors

        if lines <= 0:
            return []
        entries = []
        for proc in self._list(app):
            try:
                raw = proc.container.logs(stdout=True, stderr=True, timestamps=True, tail=lines)
            except docker.errors.NotFound:  # removed meanwhile
                raw = b""
            for seq, line in enumerate(raw.decode("utf-8", "replace").splitlines()):
                stamp, _, message = line.partition(" ")
                key, iso = docker_timestamp(stamp)
                entries.append((key, proc.tag, seq, f"{iso} {app}[{proc.tag}]: {message}"))
        entries.sort()
        return [entry[-1] for entry in entries[-lines:]]

    @_docker_errors
    def usage(self, app: str) -> list[dict]:
        """One sample of the engine's stats of each running process, all at once (each takes the
        engine about a second: it measures the CPU over one)."""
        running = [p for p in self._procs(app) if p.status == "running"]
        if not running:
            return []
        with ThreadPoolExecutor(max_workers=min(16, len(running))) as pool:
            found = list(pool.map(self._usage_of, running))
        return [entry for entry in found if entry is not None]

    def _usage_of(self, proc: _Proc) -> dict | None:
        import docker.errors

        try:
            stats = self.client.api.stats(proc.container.id, stream=False)
        except docker.errors.NotFound:  # removed meanwhile
            return None
        cpu, memory = stats_usage(stats)
        limit = int((proc.attrs.get("HostConfig") or {}).get("Memory") or 0)
        return {"name": proc.name, "type": proc.type, "num": int(proc.num) if proc.num.isdigit() else proc.num,
                "release": proc.release, "cpu_percent": cpu, "memory_bytes": memory,
                "memory_limit_bytes": limit or None}

    @_docker_errors
    def remove(self, app: str, images: list[str] | tuple = ()) -> None:
        """Remove every container of the app (one-offs too), at once, then `images`; an image
        another container still uses stays."""
        import docker.errors

        with self._locked(app):
            for proc in self._list(app):
                self._remove_now(proc.container)
            self._remove_network(app)
            for image in images:
                try:
                    self.client.images.remove(image)
                except docker.errors.ImageNotFound:
                    pass
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: in use by another container
                        raise

    @_docker_errors
    def apps(self) -> set[str]:
        networks = self.client.networks.list(filters={"label": f"{self.label('managed')}=1"})
        return set(self._summaries()) | {(n.attrs.get("Labels") or {}).get(self.label("app"), "")
                                         for n in networks} - {""}

    def _summaries(self) -> dict[str, list[tuple]]:
        """{app: [(id, state, labels)]} from one listing (summaries: no inspect of each container,
        which the SDK's full listing makes: 500 containers, 501 calls)."""
        found: dict[str, list[tuple]] = {}
        for summary in self.client.api.containers(all=True, filters={"label": f"{self.label('managed')}=1"}):
            labels = summary.get("Labels") or {}
            app = labels.get(self.label("app"), "")
            if app:
                found.setdefault(app, []).append(
                    (summary.get("Id", ""), summary.get("State", ""), tuple(sorted(labels.items()))))
        return found

    @_docker_errors
    def fingerprints(self) -> dict[str, str]:
        import hashlib

        return {app: hashlib.sha256(repr(sorted(procs)).encode()).hexdigest()[:16]
                for app, procs in self._summaries().items()}

    @_docker_errors
    def events(self):
        """Apps whose processes the engine starts or loses, as it happens (one-offs left out):
        a blocking iterator of app names that ends when the engine's stream does (a restart).
        `close()` on the returned iterator's `stream` stops it from another thread."""
        stream = self.client.events(decode=True, filters={
            "type": "container", "label": f"{self.label('managed')}=1",
            "event": ["start", "die", "oom", "destroy", "pause", "unpause"]})
        return _AppEvents(stream, self.label("app"), self.label("oneoff"))

    @_docker_errors
    def reconcile(self, desired: dict) -> dict:
        """Converge the engine to `desired` ({app: (spec, structure)}), removing apps not in it. For
        one process that owns all the apps (tests); the controller's reconciler goes app by app
        with `apps()` and `reconcile_app()` under each app's lock."""
        report = new_report()
        for app in sorted(self.apps() - set(desired)):
            merge_report(report, self.reconcile_app(None, {}, app=app))
        for app, (spec, structure) in sorted(desired.items()):
            merge_report(report, self.reconcile_app(spec, structure))
        return report

    @_docker_errors
    def reconcile_app(self, spec: ReleaseSpec | None, structure: dict, app: str | None = None,
                      switch: SwitchRoutes | None = None) -> dict:
        """Converge one app: remove containers of other releases or beyond the counts and finished
        one-offs, start missing processes, start dead ones again. A release change that never
        completed (only other releases running) gets a health-checked rollout instead, switched
        with `switch`. `spec` None: nothing should run. Returns {"started", "restarted",
        "removed": [names], "deployed": [apps], "errors": {app: reason}}."""
        app = spec.app if spec is not None else app
        report = new_report()
        try:
            with self.locked(app):
                if spec is None:
                    procs = self._list(app)
                    self._stop_and_remove(procs)
                    self._remove_network(app)
                    report["removed"].extend(p.name for p in procs)
                else:
                    self._reconcile_app(spec, structure, report, switch)
        except DeployError:
            raise
        except SchedulerError as exc:
            report["errors"][app] = str(exc)
        return report

    def _reconcile_app(self, spec: ReleaseSpec, structure: dict, report: dict,
                       switch: SwitchRoutes | None = None) -> None:
        procs = self._list(spec.app)
        # One-offs finished a while ago: left behind by a controller that died while running them
        # (a live run() reads the output of its finished container before removing it).
        for proc in [p for p in procs if p.oneoff and p.status not in ALIVE and p.status != "created"
                     and time.time() - (_finished_at(p.attrs) or 0) > ONEOFF_LEFTOVER_AFTER]:
            self._remove_now(proc.container)
            report["removed"].append(proc.name)
        procs = [p for p in procs if not p.oneoff]
        wanted = self._wanted(spec, structure)
        ours = {(p.type, p.num): p for p in procs if p.release == spec.release and (p.type, p.num) in wanted}
        others_alive = [p for p in procs if p.release != spec.release and p.status in ALIVE]
        unpromoted = [p for p in procs if p.release == spec.release and not p.promoted]
        if wanted and (others_alive or unpromoted):
            # A rollout cut short (its processes never promoted, or the old ones never retired):
            # finish it health-checked, with the old processes serving until the switch.
            self._rollout(Convergence(spec, structure, switch))
            report["deployed"].append(spec.app)
            return
        extras = [p for p in procs if ours.get((p.type, p.num)) is not p]
        self._stop_and_remove(extras)
        report["removed"].extend(p.name for p in extras)
        missing = []
        for ptype, num in wanted:
            proc = ours.get((ptype, num))
            if proc is not None and proc.status in ALIVE:
                continue
            if proc is not None and proc.status in ("exited", "created", "paused"):
                if proc.status == "paused":
                    proc.container.unpause()
                else:
                    proc.container.start()
                report["restarted"].append(proc.name)
                continue
            if proc is not None:
                self._remove_now(proc.container)
            missing.append((ptype, num))
        if missing:
            port = self.port(spec)

            def start(wanted: tuple[str, str]) -> str:
                ptype, num = wanted
                container = self._create(spec, ptype, num, port, self._command_for(spec, ptype),
                                         restart=self.restart_policy)
                container.start()
                return container.name

            with ThreadPoolExecutor(max_workers=min(START_PARALLEL, len(missing))) as pool:
                report["started"].extend(pool.map(start, missing))


def purge(client, namespace: str, app: str | None = None) -> None:
    """Remove every container and network of a namespace (or of one app in it), whatever state it
    is in: what tests and benchmarks call to leave nothing of theirs behind."""
    label = [f"{namespace}.managed=1"] + ([f"{namespace}.app={app}"] if app else [])
    for container in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001 - removed meanwhile
            pass
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
        except Exception:  # noqa: BLE001 - removed meanwhile
            pass
