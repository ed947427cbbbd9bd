"""`deis-platform up|down|status`: start and stop the platform's processes on one host.

Each component runs as a background process with a pid file in the data directory, so `up` is
idempotent (a running component is reported, not started twice) and `down` stops exactly what
`up` started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


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
    # worker holds no more connections than it has threads, so waiting connections queue in the
    # kernel for whichever worker is free instead of piling onto one (gunicorn's default holds
    # 1000). See docs/benchmarks.md.
    workers: int = int(os.environ.get("DEIS_CONTROLLER_WORKERS", "3"))
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
        return {**os.environ, "DEIS_DATA_DIR": str(self.data_dir),
                "DJANGO_SETTINGS_MODULE": "deis.controller.settings"}

    def pid(self) -> int | None:
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

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "deis.controller", "migrate", "--noinput", "-v", "0"],
                       env=self.env(), check=True)

    def start(self, wait: float = 60.0) -> None:
        for folder in (self.pidfile.parent, self.logfile.parent):
            folder.mkdir(parents=True, exist_ok=True)
        self.migrate()
        subprocess.run([
            sys.executable, "-m", "gunicorn", "deis.controller.wsgi:application",
            "--bind", f"{self.bind_host}:{self.port}",
            "--workers", str(self.workers), "--worker-class", "gthread", "--threads", str(self.threads),
            "--worker-connections", str(self.worker_connections or self.threads),
            "--daemon", "--pid", str(self.pidfile),
            "--error-logfile", str(self.logfile), "--capture-output",
            "--forwarded-allow-ips", "*", "--timeout", "120", "--graceful-timeout", "30",
        ], env=self.env(), check=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.healthy(timeout=1.0):
                return
            time.sleep(0.2)
        raise RuntimeError(f"The controller did not answer on {self.url} within {wait:.0f}s; see {self.logfile}")

    def stop(self, wait: float = 30.0) -> bool:
        return _stop(self.pid(), self.pidfile, wait)


@dataclass
class Daemon:
    """A platform process other than the controller (the reconciler, the logger, the builder):
    started detached with a pid file and a log file in the data directory."""

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


def daemons(data_dir: Path) -> list[Daemon]:
    """The processes `up` starts besides nginx and the controller, in start order."""
    python = sys.executable
    return [
        Daemon("logger", [python, "-m", "deis.logger", "--data-dir", str(data_dir)], data_dir),
        Daemon("reconciler", [python, "-m", "deis.controller", "reconcile"], data_dir),
        Daemon("builder", [python, "-m", "deis.builder", "serve"], data_dir),
    ]


def controller_from_env() -> Controller:
    return Controller(data_dir=default_data_dir(), port=int(os.environ.get("DEIS_CONTROLLER_PORT", "8000")))


def router_from_env():
    from deis.router import Router

    https = os.environ.get("DEIS_ROUTER_HTTPS_PORT", "443")
    return Router(default_data_dir(), http_port=int(os.environ.get("DEIS_ROUTER_PORT", "80")),
                  https_port=int(https) if https != "0" else None)


def apps_url(router) -> str:
    domain = os.environ.get("DEIS_PLATFORM_DOMAIN", "localhost")
    port = "" if router.http_port == 80 else f":{router.http_port}"
    return f"http://<app>.{domain}{port}/"


def up() -> int:
    # The platform runs releases on the local Docker Engine unless told otherwise.
    os.environ.setdefault("DEIS_SCHEDULER", "docker")
    controller, router = controller_from_env(), router_from_env()
    started = not router.running()
    router.start()
    if controller.pid() and controller.healthy():
        print(f"Deis is already up: controller {controller.url} (pid {controller.pid()}).")
    else:
        if controller.pid():
            controller.stop()
        print("Starting the controller...", flush=True)
        controller.start()
        print("Deis is up.")
    if started:
        print(f"Started the router on port {router.http_port}.")
    env = {**controller.env(), "DEIS_CONTROLLER_URL": controller.url}
    for daemon in daemons(controller.data_dir):
        if daemon.start(env):
            print(f"Started the {daemon.name}.")
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"  controller  {controller.url}      (data: {controller.data_dir}, {database})")
    print(f"  apps        {apps_url(router)}")
    print(f"  git         ssh://git@<this host>:{os.environ.get('DEIS_BUILDER_PORT', '2222')}/<app>.git")
    print(f"  logs        {controller.logfile.parent}/")
    print(f"Next: deis register {controller.url}")
    print("      (`make up` links deis into /usr/local/bin when it can; it is also in .venv/bin)")
    return 0


def down() -> int:
    controller, router = controller_from_env(), router_from_env()
    for daemon in reversed(daemons(controller.data_dir)):
        if daemon.stop():
            print(f"Stopped the {daemon.name}.")
    print("Stopped the controller." if controller.stop() else "The controller was not running.")
    if router.running():
        router.stop()
        print("Stopped the router.")
    return 0


def status() -> int:
    controller, router = controller_from_env(), router_from_env()
    pid, healthy = controller.pid(), controller.healthy()
    state = "up" if pid and healthy else ("starting or failing" if pid else "down")
    print(f"controller  {state}  {controller.url}" + (f"  (pid {pid})" if pid else ""))
    print(f"router      {'up' if router.running() else 'down'}  port {router.http_port}")
    ok = bool(pid and healthy and router.running())
    for daemon in daemons(controller.data_dir):
        dpid = daemon.pid()
        print(f"{daemon.name:<11} {'up' if dpid else 'down'}" + (f"  (pid {dpid})" if dpid else ""))
        ok = ok and dpid is not None
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deis-platform", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
