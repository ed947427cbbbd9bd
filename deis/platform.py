"""`deis-platform up|down|status`: start, supervise and stop the platform's processes on one host.

Each data directory gets a supervisord of its own (`supervisor` from PyPI, in the venv): config,
unix socket, pid file and log under the data directory, so several platforms (tests run many) never
share one. It runs the controller (gunicorn in the foreground), the router (HAProxy's master in
the foreground, see `run_router`), the logger, the deployer and the builder, and restarts any of them
that dies, with supervisor's backoff. `up` starts supervisord when it is not running and then every
program that is not running; it never stops or restarts a program that runs (it judges the process
by supervisor's state, not by one slow request). `down` stops the programs and supervisord.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deis import files

WORKER_CLASS = "deis.controller.worker.HealthWorker"  # gthread, and /healthz while all threads are busy
START_WAIT = 60.0  # s `up` waits for the controller's /healthz and for each program to run


def default_data_dir() -> Path:
    if os.environ.get("DEIS_DATA_DIR"):
        return Path(os.environ["DEIS_DATA_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/deis")
    return Path.home() / ".local" / "share" / "deis"


@dataclass
class Controller:
    """The controller: migrations, then gunicorn serving the Django project."""

    data_dir: Path
    port: int = 8000
    bind_host: str = "0.0.0.0"
    # Requests are CPU-bound under the GIL: one thread per worker gave the shortest tail, and a
    # worker holds no more connections than it has threads, so waiting connections queue for
    # whichever worker is free instead of piling onto one (gunicorn's default holds 1000). See
    # docs/benchmarks.md; deis/controller/worker.py keeps that while answering /healthz on a busy worker.
    workers: int = int(os.environ.get("DEIS_CONTROLLER_WORKERS", "2"))
    threads: int = int(os.environ.get("DEIS_CONTROLLER_THREADS", "1"))
    worker_connections: int | None = None

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "run" / "controller.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "logs" / "controller.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        """The environment of every platform process. MALLOC_ARENA_MAX: glibc gives each thread
        that allocates an arena of its own (up to 8 per CPU), which threaded Python processes
        fill with fragments they never return; two are plenty for the GIL's one running thread."""
        return {"MALLOC_ARENA_MAX": "2", **os.environ, "DEIS_DATA_DIR": str(self.data_dir),
                "DJANGO_SETTINGS_MODULE": "deis.controller.settings"}

    def argv(self, daemon: bool = False) -> list[str]:
        """gunicorn's command: in the foreground under supervisord, or detached with a pid file."""
        detached = (["--daemon", "--pid", str(self.pidfile), "--error-logfile", str(self.logfile), "--capture-output"]
                    if daemon else ["--error-logfile", "-"])
        return [
            sys.executable, "-m", "gunicorn", "deis.controller.wsgi:application",
            "--bind", f"{self.bind_host}:{self.port}",
            "--workers", str(self.workers), "--worker-class", WORKER_CLASS, "--threads", str(self.threads),
            "--worker-connections", str(self.worker_connections or self.threads),
            "--forwarded-allow-ips", "*", "--timeout", "120", "--graceful-timeout", "30",
            "--preload",  # the workers share the imported project's pages (copy-on-write, gc.freeze)
            "--no-control-socket",  # gunicorn's default is one path per user, shared by every platform
            "--config", "python:deis.controller.gunicorn_hooks",  # the private umask, also when detached
            *detached,
        ]

    def pid(self) -> int | None:
        """The detached controller's pid (`start`), from its pid file."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as answer:
                return answer.status == 200
        except OSError:
            return False

    def wait_healthy(self, wait: float = START_WAIT) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.healthy(timeout=1.0):
                return True
            time.sleep(0.2)
        return False

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "deis.controller", "migrate", "--noinput", "-v", "0"],
                       env=self.env(), check=True)

    def start(self, wait: float = START_WAIT) -> None:
        """Migrate, then start gunicorn detached (tests and benchmarks; `up` uses supervisord)."""
        for folder in (self.pidfile.parent, self.logfile.parent):
            folder.mkdir(parents=True, exist_ok=True)
        self.migrate()
        subprocess.run(self.argv(daemon=True), env=self.env(), check=True)
        if not self.wait_healthy(wait):
            raise RuntimeError(f"The controller did not answer on {self.url} within {wait:.0f}s; see {self.logfile}")

    def stop(self, wait: float = 30.0) -> bool:
        return _stop(self.pid(), self.pidfile, wait)


@dataclass
class Daemon:
    """A platform process started detached with a pid file and a log file in the data directory:
    for tests that run parts of the platform without supervisord (tests/e2e), and to stop what an
    `up` from before supervisord left running."""

    name: str
    argv: list[str]
    data_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError, OSError):
            return None
        return pid if self.argv[-1].encode() in cmdline else None  # not a recycled pid

    def start(self, env: dict | None = None) -> bool:
        """Start unless running; True when started."""
        if self.pid():
            return False
        for folder in (self.pidfile.parent, self.logfile.parent):
            folder.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env or os.environ.copy(), start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        return True

    def stop(self, wait: float = 30.0) -> bool:
        return _stop(self.pid(), self.pidfile, wait)


def _stop(pid: int | None, pidfile: Path, wait: float) -> bool:
    """SIGTERM, SIGKILL after `wait` s; False when nothing was running."""
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1][:1]
    except OSError:
        return False
    return state not in ("Z", "X")


@dataclass
class Program:
    """One program of supervisord's: what runs, and how long it may take to stop."""

    name: str
    argv: list[str]
    stopwaitsecs: int = 15
    stopsignal: str = "TERM"


def programs(controller: Controller) -> list[Program]:
    """What supervisord runs, in start order: the controller first (the others talk to it); `down`
    stops them in the reverse order, the deployer (which changes the router) before the router."""
    python, data_dir = sys.executable, controller.data_dir
    return [
        Program("controller", controller.argv(), stopwaitsecs=35),  # gunicorn's graceful timeout is 30 s
        # HAProxy's master: SIGUSR1 is its graceful stop (open requests finish; SIGKILL after stopwaitsecs).
        Program("router", [python, "-m", "deis.platform", "router"], stopwaitsecs=15, stopsignal="USR1"),
        Program("logger", [python, "-m", "deis.logger", "--data-dir", str(data_dir)]),
        # With the router's reconciler on a thread (--routes): it serves the routes the database
        # holds (deis/controller/api/routing.py).
        Program("deployer", [python, "-m", "deis.controller", "deploy", "--routes"]),
        Program("builder", [python, "-m", "deis.builder", "serve"]),
    ]


UP = ("RUNNING", "STARTING")  # `up` leaves these alone
KEEP_RUNNING = ("controller", "router")  # a new command of theirs waits for their next start
ACTIVE = (*UP, "BACKOFF")  # supervisor's "running states": there is, or soon will be, a process


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket, with a timeout (supervisor's own transport has none)."""

    def __init__(self, path: str, timeout: float):
        super().__init__()
        self.path, self.timeout = path, timeout

    def make_connection(self, host):
        connection = http.client.HTTPConnection("localhost", timeout=self.timeout)
        path, timeout = self.path, self.timeout

        def connect():
            connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.sock.settimeout(timeout)
            connection.sock.connect(path)

        connection.connect = connect
        return connection


@dataclass
class Supervisor:
    """The supervisord of one data directory."""

    data_dir: Path
    # A program that dies is started again at once; one that dies within `startsecs` of its start
    # waits 1 s, then 2 s, ... (supervisor's backoff) and supervisor gives up only after
    # `startretries` such starts in a row: about 5 days of failing for 1000.
    startsecs: int = 1
    startretries: int = 1000
    log_bytes: str = "10MB"
    log_backups: int = 3
    timeout: float = 60.0  # of one call; stopProcess waits up to a program's stopwaitsecs
    _proxy: xmlrpc.client.ServerProxy | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.data_dir / "run" / "supervisord.conf"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "run" / "supervisord.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "logs" / "supervisord.log"

    @property
    def socket_path(self) -> Path:
        """`run/supervisor.sock`, or a short path of the same data directory's in the temporary
        folder when that one is past the 107 bytes a unix socket's path may have."""
        path = (self.data_dir / "run" / "supervisor.sock").absolute()
        if len(os.fsencode(path)) <= 107:
            return path
        digest = hashlib.sha256(os.fsencode(self.data_dir.absolute())).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"deis-supervisor-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"  # supervisord gives it to its programs as SUPERVISOR_SERVER_URL

    @property
    def rpc(self):
        if self._proxy is None:
            self._proxy = xmlrpc.client.ServerProxy("http://localhost",
                                                    transport=_UnixTransport(str(self.socket_path), self.timeout))
        return self._proxy.supervisor

    def pid(self) -> int | None:
        """supervisord's pid when it answers on the socket."""
        if not self.socket_path.exists():
            return None
        try:
            return int(self.rpc.getPID())
        except (OSError, http.client.HTTPException, xmlrpc.client.Error):
            return None

    def config(self, programs: list[Program]) -> str:
        def value(text) -> str:
            return str(text).replace("%", "%%")  # supervisor expands %(name)s in every value

        logs = self.logfile.parent
        lines = [
            "; written by `deis-platform up` when it starts supervisord; control: supervisorctl -c <this file>",
            "[unix_http_server]", f"file={value(self.socket_path)}", "chmod=0700", "",
            "[supervisord]", f"logfile={value(self.logfile)}", f"logfile_maxbytes={self.log_bytes}",
            "logfile_backups=1", f"pidfile={value(self.pidfile)}", f"childlogdir={value(logs)}",
            f"identifier=deis:{value(self.data_dir.absolute())}",
            "umask=077",  # every program's files are private (supervisord's default is 022)
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl={value(self.url)}", "",
        ]
        for program in programs:
            lines += [
                f"[program:{program.name}]", f"command={value(shlex.join(program.argv))}",
                "autostart=false",  # `up` starts them, the controller after its migrations
                "autorestart=true", f"startsecs={self.startsecs}", f"startretries={self.startretries}",
                f"stopsignal={program.stopsignal}", f"stopwaitsecs={program.stopwaitsecs}",
                "stopasgroup=true", "killasgroup=true",
                "redirect_stderr=true", f"stdout_logfile={value(logs / (program.name + '.log'))}",
                f"stdout_logfile_maxbytes={self.log_bytes}", f"stdout_logfile_backups={self.log_backups}",
                # DEIS_ROUTER_SUPERVISED: the programs' Routers (the route reconciler's) never start a
                # HAProxy of their own, they wait for the router program's (deis.router.Router.start).
                # DEIS_ROUTER_RECONCILER: the deployer and the API leave the router to the reconciler.
                'environment=PYTHONUNBUFFERED="1",DEIS_ROUTER_SUPERVISED="1",DEIS_ROUTER_RECONCILER="1"', "",
            ]
        return "\n".join(lines)

    def start(self, programs: list[Program], env: dict, wait: float = 20.0) -> int:
        """Write the config and start supervisord (it detaches); its pid once it answers."""
        for folder in (self.conf.parent, self.logfile.parent, self.socket_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config(programs))
        started = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
        if started.returncode != 0:
            raise RuntimeError(f"supervisord did not start: {(started.stderr or started.stdout).strip()}")
        deadline = time.monotonic() + wait
        while (pid := self.pid()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not answer on {self.socket_path} within {wait:.0f}s; "
                                   f"see {self.logfile}")
            time.sleep(0.1)
        return pid

    def update(self, programs: list[Program]) -> tuple[list[str], list[str]]:
        """Bring a running supervisord's programs in line with `programs` (one started by an older
        `up`): rewrite the config, add the new programs (stopped, as at a start), stop and remove
        the ones no longer there, and stop the ones whose command changed (`up` starts them
        again): a removed program's work may have moved into one of them (session 9: the
        router's reconciler into the deployer). The controller and the router keep running as
        they are: their restart would interrupt the API and the apps. (removed, stopped)."""
        if self.conf.exists() and self.conf.read_text() == self.config(programs):
            return [], []
        self.conf.write_text(self.config(programs))
        [[added, changed, removed]] = self.rpc.reloadConfig()
        stopped = [name for name in changed if name not in KEEP_RUNNING]
        for name in [*removed, *stopped]:
            with contextlib.suppress(xmlrpc.client.Fault):
                self.rpc.stopProcessGroup(name, True)
            self.rpc.removeProcessGroup(name)
        for name in [*added, *stopped]:  # a stopped one is added back with its new command
            self.rpc.addProcessGroup(name)
        return list(removed), stopped

    def processes(self) -> dict[str, dict]:
        """supervisor's process info by name: statename, pid, start, now, spawnerr, ..."""
        return {info["name"]: info for info in self.rpc.getAllProcessInfo()}

    def start_program(self, name: str) -> None:
        """Start a program that does not run; one waiting in BACKOFF is started now."""
        try:
            self.rpc.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise
            self.stop_program(name)
            self.rpc.startProcess(name, False)

    def stop_program(self, name: str) -> bool:
        try:
            return bool(self.rpc.stopProcess(name, True))
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise
            return False

    def wait_running(self, names: list[str], wait: float = START_WAIT) -> dict[str, dict]:
        """Wait until each of `names` is RUNNING (up for `startsecs`); the last states seen."""
        deadline = time.monotonic() + wait
        while True:
            states = self.processes()
            if all(states[name]["statename"] == "RUNNING" for name in names) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def shutdown(self, wait: float = 30.0) -> None:
        pid = self.pid()
        try:
            self.rpc.shutdown()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error):
            pass
        deadline = time.monotonic() + wait
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restarts(self) -> Counter:
        """How often each program was restarted: the "spawned:" lines of supervisord's log since the
        running supervisord started ("supervisord started with pid N"), less each program's first."""
        pid = self.pid()
        logs = [Path(f"{self.logfile}.1"), self.logfile]  # logfile_backups=1
        text = "".join(path.read_text(errors="replace") for path in logs if path.exists())
        mark = text.rfind(f"supervisord started with pid {pid}\n") if pid else -1
        spawned = Counter(re.findall(r"spawned: '([^']+)' with pid", text[max(mark, 0):]))
        return Counter({name: count - 1 for name, count in spawned.items() if count > 1})

    def leftovers(self) -> list[int]:
        """Processes a supervisord of this data directory started and left behind (it was killed):
        supervisord gives its programs SUPERVISOR_SERVER_URL, which names this data directory's socket."""
        mark = f"SUPERVISOR_SERVER_URL={self.url}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if mark in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found


def stop_groups(pids: list[int], wait: float = 30.0) -> None:
    """SIGTERM the process groups of `pids` (each program is a group of its own), SIGKILL after `wait` s."""
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    groups.discard(os.getpgrp())
    for sig, grace in ((signal.SIGTERM, wait), (signal.SIGKILL, 5.0)):
        for group in groups:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not any(_alive(pid) for pid in pids):
            return


def stop_unsupervised(controller: Controller, supervisor: Supervisor) -> list[str]:
    """With no supervisord running: stop what a killed supervisord left running, and what an `up`
    from before supervisord started with pid files. What was stopped, as "the logger"."""
    stopped = []
    if left := supervisor.leftovers():
        stop_groups(left)
        stopped.append(f"{len(left)} processes left by a supervisord that is gone")
    if controller.stop():
        stopped.append("the controller (started without supervisord)")
    python = sys.executable
    for name, argv in (("logger", [python, "-m", "deis.logger", "--data-dir", str(controller.data_dir)]),
                       ("deployer", [python, "-m", "deis.controller", "deploy"]),
                       ("routes", [python, "-m", "deis.controller", "route"]),
                       ("reconciler", [python, "-m", "deis.controller", "reconcile"]),
                       ("builder", [python, "-m", "deis.builder", "serve"])):
        if Daemon(name, argv, controller.data_dir).stop():
            stopped.append(f"the {name} (started without supervisord)")
    # A router HAProxy that runs without supervisord is left alone: the router program takes over
    # from it when it starts (Router.run), with no gap of minutes in which nothing serves the apps.
    return stopped


@contextlib.contextmanager
def one_at_a_time(data_dir: Path):
    """`up` and `down` of one data directory wait for each other (two would start two supervisords)."""
    (data_dir / "run").mkdir(parents=True, exist_ok=True)
    with open(data_dir / "run" / "platform.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def controller_from_env() -> Controller:
    return Controller(data_dir=default_data_dir(), port=int(os.environ.get("DEIS_CONTROLLER_PORT", "8000")))


def router_from_env(**options):
    """The router of DEIS_DATA_DIR, with the settings deis.router.settings reads: supervisord's
    programs share `up`'s environment, so the HAProxy it runs and the one the deployer changes
    are the same."""
    from deis.router import Router, settings

    return Router(default_data_dir(), **{**settings.from_environment(), **options})


def run_router() -> int:
    """supervisord's router program: write the router's files from its last good routes and become
    HAProxy's master in the foreground (Router.run)."""
    from deis.router import RouterError

    try:
        router_from_env(install=False, supervised=True).run()
    except RouterError as exc:
        print(f"The router did not start: {exc}", file=sys.stderr)
    return 1


def apps_url(router) -> str:
    domain = os.environ.get("DEIS_PLATFORM_DOMAIN", "localhost")
    port = "" if router.http_port == 80 else f":{router.http_port}"
    return f"http://<app>.{domain}{port}/"


def up() -> int:
    # The platform runs releases on the local Docker Engine unless told otherwise.
    os.environ.setdefault("DEIS_SCHEDULER", "docker")
    controller, router = controller_from_env(), router_from_env()
    supervisor = Supervisor(controller.data_dir)
    haproxy = router.haproxy  # installs HAProxy (scripts/haproxy.sh) when it is missing, before anything starts
    if supervisor.pid() is None:
        for what in stop_unsupervised(controller, supervisor):
            print(f"Stopped {what}.")
        supervisor.start(programs(controller), {**controller.env(), "DEIS_CONTROLLER_URL": controller.url,
                                                "DEIS_HAPROXY": haproxy})
    else:
        removed, stopped = supervisor.update(programs(controller))
        for name in removed:
            print(f"Stopped the {name} (a program of an older supervisord config).")
        for name in stopped:
            print(f"Stopped the {name} to start it with its new command.")
    states = supervisor.processes()
    if states["controller"]["statename"] in UP:
        said = f"Deis is already up: controller {controller.url} (pid {states['controller']['pid']})."
    else:
        print("Starting the controller...", flush=True)
        controller.migrate()
        supervisor.start_program("controller")
        said = "Deis is up."
    if not controller.wait_healthy():
        print(f"The controller did not answer on {controller.url} within {START_WAIT:.0f}s; see {controller.logfile}",
              file=sys.stderr)
        return 1
    print(said)
    names = [program.name for program in programs(controller)]
    for name in names[1:]:
        if states[name]["statename"] not in UP:
            supervisor.start_program(name)  # the router writes its configuration first (Router.run)
            print(f"Started the router on port {router.http_port}." if name == "router" else f"Started the {name}.")
    not_running = {name: info for name, info in supervisor.wait_running(names).items()
                   if info["statename"] != "RUNNING"}
    for name, info in not_running.items():
        print(f"The {name} is {info['statename']}: see {controller.logfile.parent / (name + '.log')}", file=sys.stderr)
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"  controller  {controller.url}      (data: {controller.data_dir}, {database})")
    print(f"  apps        {apps_url(router)}")
    print(f"  git         ssh://git@<this host>:{os.environ.get('DEIS_BUILDER_PORT', '2222')}/<app>.git")
    print(f"  logs        {controller.logfile.parent}/")
    token = admin_token(controller)
    if token:
        print(f"Next: deis register {controller.url} --admin-token {token}")
        print("      (there is no administrator yet: whoever registers with this one-time token becomes")
        print("      one; or make one with `make admin USER=name`)")
    else:
        print(f"Next: deis register {controller.url}")
    print("      (`make up` links deis into /usr/local/bin when it can; it is also in .venv/bin)")
    return 1 if not_running else 0


def admin_token(controller: Controller) -> str | None:
    """A new one-time admin token while the platform has no admin (`python -m deis.controller
    admin_token`; the controller keeps only its hash), else None."""
    done = subprocess.run([sys.executable, "-m", "deis.controller", "admin_token"], env=controller.env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"Could not make a one-time admin token: {done.stderr.strip()}", file=sys.stderr)
        return None
    return done.stdout.strip() or None


def admin(username: str) -> int:
    """`deis-platform admin USERNAME`: make USERNAME an administrator (creating the account, with a
    password prompt, when there is none), in this data directory's database."""
    controller = controller_from_env()
    controller.migrate()  # before the first `up`, too
    return subprocess.run([sys.executable, "-m", "deis.controller", "admin", username],
                          env=controller.env()).returncode


def down() -> int:
    controller, router = controller_from_env(), router_from_env()
    supervisor = Supervisor(controller.data_dir)
    stopped = []
    if supervisor.pid() is not None:
        states = supervisor.processes()
        for program in reversed(programs(controller)):
            if states.get(program.name, {}).get("statename") in ACTIVE and supervisor.stop_program(program.name):
                stopped.append(f"the {program.name}")
        supervisor.shutdown()
        stopped.append("supervisord")
    stopped += stop_unsupervised(controller, supervisor)
    if router.running():  # one started without supervisord (Router.start), or left by a killed supervisord
        router.stop()
        stopped.append("the router (not supervised)")
    for what in stopped:
        if not what.startswith("the controller"):
            print(f"Stopped {what}.")
    controllers = [what for what in stopped if what.startswith("the controller")]
    print(f"Stopped {controllers[0]}." if controllers else "The controller was not running.")
    return 0


def _uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def _row(name: str, word: str, state: str = "", pid: int | None = None, uptime: str = "",
         restarts: int | None = None, note: str = "") -> str:
    pid_cell, uptime_cell = f"pid {pid}" if pid else "", f"uptime {uptime}" if uptime else ""
    restarts_cell = "" if restarts is None else f"restarts {restarts}"
    return (f"{name:<11} {word:<10}  {state:<8}  {pid_cell:<11}  {uptime_cell:<16}  {restarts_cell:<11}  "
            f"{note}").rstrip()


def status() -> int:
    """One line a process: its state (up, starting, restarting, failing or down, and supervisor's
    name for it), pid, uptime and restarts since supervisord started (see Supervisor.restarts)."""
    controller, router = controller_from_env(), router_from_env()
    supervisor = Supervisor(controller.data_dir)
    pid = supervisor.pid()
    states = supervisor.processes() if pid else {}
    restarts = supervisor.restarts() if pid else None
    ok = pid is not None
    notes = {"controller": controller.url, "router": f"port {router.http_port}"}
    for program in programs(controller):
        info = states.get(program.name, {"statename": ""})
        word = {"RUNNING": "up", "STARTING": "starting", "BACKOFF": "restarting"}.get(info["statename"], "down")
        if program.name == "controller" and word == "up" and not controller.healthy():
            word = "failing"  # it answers /healthz even with every request thread busy
        note = notes.get(program.name, "")
        if program.name == "router" and word == "up" and router.master_pid() != info.get("pid"):
            word = "failing"  # supervisord's process is not (yet) the master of the pid file
        if program.name == "router" and not info.get("pid") and (unsupervised := router.master_pid()):
            word, info = "detached", {**info, "pid": unsupervised}  # serves, but nothing restarts it
            note += " (not supervised: `make up` takes it over)"
        print(_row(program.name, word, info["statename"], info.get("pid"),
                   _uptime(info["now"] - info["start"]) if info.get("now") and info.get("pid") else "",
                   None if restarts is None else restarts[program.name], note))
        ok = ok and word == "up"
    left = [] if pid else supervisor.leftovers()
    print(_row("supervisord", "up" if pid else "down", pid=pid,
               uptime=_uptime(time.time() - supervisor.pidfile.stat().st_mtime) if pid else "",
               note=f"{len(left)} processes it started still run unsupervised; `make up` replaces them"
               if left else str(supervisor.socket_path)))
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deis-platform", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "router", "admin"],
                        help="router: supervisord's router program (HAProxy in the foreground); "
                             "admin USERNAME: make USERNAME an administrator (created when missing)")
    parser.add_argument("username", nargs="?", help="admin: the user to make an administrator")
    args = parser.parse_args(argv)
    files.private(default_data_dir())
    if args.command == "admin":
        if not args.username:
            parser.error("admin needs a USERNAME")
        return admin(args.username)
    if args.command == "status":
        return status()
    if args.command == "router":
        return run_router()  # not under the lock: `up` holds it while supervisord starts the router
    with one_at_a_time(default_data_dir()):
        return {"up": up, "down": down}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
