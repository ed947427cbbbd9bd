"""Shared fixtures: a live controller (real gunicorn, real database) and API clients for it.

Each live controller gets its own data directory, port and (on PostgreSQL) its own database, so
tests neither rely on nor trip over a platform left running on this machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Settings read DEIS_DATA_DIR at import: point it at a throwaway folder before Django loads.
os.environ.setdefault("DEIS_DATA_DIR", tempfile.mkdtemp(prefix="deis-test-"))

import pytest  # noqa: E402
import requests  # noqa: E402

from deis.platform import Controller, Daemon  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_postgres_database(url: str) -> tuple[str, callable]:
    """A fresh database on the server of `url`; returns its URL and a function that drops it."""
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"deis_live_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path="/" + name)), drop


class LiveController:
    """A running controller and helpers to act on it as different users."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self.url = controller.url
        self.builder_key = (controller.data_dir / "builder_key").read_text().strip()

    def register(self, username: str, password: str = "s3cret-pass", email: str | None = None) -> "ApiUser":
        answer = requests.post(f"{self.url}/v1/auth/register",
                               data={"username": username, "password": password,
                                     "email": email or f"{username}@example.com"})
        assert answer.status_code == 201, answer.text
        return self.login(username, password)

    def register_admin(self, username: str, password: str = "s3cret-pass", email: str | None = None) -> "ApiUser":
        """A user made an administrator the operator's way: registered, then `deis-platform admin`
        (registering alone never makes an admin)."""
        user = self.register(username, password, email)
        self.promote(username)
        return user

    def promote(self, username: str) -> None:
        env = getattr(self.controller, "environment", None) or self.controller.env()
        done = subprocess.run([sys.executable, "-m", "deis.platform", "admin", username], env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def admin_token(self) -> str:
        """A one-time admin token, as `deis-platform up` prints while there is no admin."""
        env = getattr(self.controller, "environment", None) or self.controller.env()
        done = subprocess.run([sys.executable, "-m", "deis.controller", "admin_token"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip(), done.stdout + done.stderr
        return done.stdout.strip()

    def login(self, username: str, password: str = "s3cret-pass") -> "ApiUser":
        answer = requests.post(f"{self.url}/v1/auth/login/", data={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return ApiUser(self.url, username, answer.json()["token"])


class ApiUser(requests.Session):
    """A requests session that talks JSON to the controller as one user. Like the deis CLI, it
    waits after a change for the platform to roll it out (`settle=False`: it does not), and puts
    the rollout on the answer as `answer.rollout` (None when there was nothing to wait for)."""

    ROLLOUT_WAIT = 90.0

    def __init__(self, base: str, username: str, token: str | None, settle: bool = True):
        super().__init__()
        self.base, self.username, self.token, self.settle = base, username, token, settle
        if token:
            self.headers["Authorization"] = f"token {token}"

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = self.base + url
        answer = super().request(method, url, *args, **kwargs)
        answer.rollout = None
        if self.settle and answer.headers.get("Deis-Rollout"):
            answer.rollout = self.await_rollout(url, int(answer.headers["Deis-Rollout"]))
        return answer

    def await_rollout(self, url: str, generation: int) -> dict:
        """The app's rollout once `generation` is observed (bounded; fails the test otherwise)."""
        app = url.split("/v1/apps/", 1)[1].split("/", 1)[0]
        deadline = time.monotonic() + self.ROLLOUT_WAIT
        while True:
            rollout = super().request("GET", f"{self.base}/v1/apps/{app}/rollout").json()
            if rollout["observed"] >= generation and rollout["phase"] in ("deployed", "failed"):
                return rollout
            assert time.monotonic() < deadline, f"the rollout of {app} never finished: {rollout}"
            time.sleep(0.05)


def start_live_controller(tmp: Path, env: dict | None = None, deployer: bool = False) -> tuple[Controller, callable]:
    """A controller of its own; `env` adds settings (DEIS_*) for it alone. `deployer`: with the
    deployer that rolls out what its API records (a runtime needs one; without, changes stay
    pending)."""
    drop = lambda: None  # noqa: E731
    saved = dict(os.environ)
    if saved.get("DATABASE_URL"):
        live_url, drop = _create_postgres_database(saved["DATABASE_URL"])
        os.environ["DATABASE_URL"] = live_url
    os.environ.update(env or {})
    if deployer:
        os.environ["DEIS_ROUTER_RECONCILER"] = "1"
    controller = Controller(data_dir=tmp, port=free_port(), bind_host="127.0.0.1", workers=2, threads=8)
    try:
        controller.environment = controller.env()  # for other processes of this platform
        controller.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    daemons = []
    if deployer:  # with the router's reconciler, which serves the routes the deployer records
        daemons = [Daemon("deployer", [sys.executable, "-m", "deis.controller", "deploy", "--routes"], tmp)]
        for daemon in daemons:
            daemon.start(controller.environment)

    def stop():
        for daemon in reversed(daemons):
            daemon.stop()
        controller.stop()
        drop()

    return controller, stop


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> LiveController:
    """One controller for the session; tests use unique user and app names. Every test logs in
    from 127.0.0.1, so its failed logins must not throttle the next tests' (DEIS_LOGIN_FAILURES)."""
    controller, stop = start_live_controller(tmp_path_factory.mktemp("live-controller"),
                                             {"DEIS_LOGIN_FAILURES": "1000"})
    try:
        live = LiveController(controller)
        live.admin = live.register_admin("admin")
        yield live
    finally:
        stop()


@pytest.fixture(scope="session")
def admin(live) -> ApiUser:
    """The live controller's administrator (made with `deis-platform admin`)."""
    return live.admin


@pytest.fixture(autouse=True)
def fresh_login_counters():
    """In-process tests all log in from 127.0.0.1: no test inherits another's failed logins
    (the counters of live controllers are in their own data directories)."""
    from django.conf import settings

    if Path(settings.CACHES["accounts"]["LOCATION"]).is_dir():
        from django.core.cache import caches

        caches["accounts"].clear()
    yield


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
