"""Fixtures for the builder: a whole platform of its own (controller on the Docker scheduler with its
own label namespace, its own nginx router, the builder's SSH server as `python -m deis.builder
serve`), users with real SSH keys, and git run for real over real SSH. Everything is on free ports
and in temporary folders; containers and images the tests made are removed afterwards.

Fixture names here start with `git_` or `builder_` (the buildpack tests add `slug_` ones).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from deis.scheduler.docker import purge
from tests.conftest import (
    ApiUser,
    LiveController,
    free_port,
    start_live_controller,
    unique,
)

BUILDER_ROOT = Path(__file__).resolve().parents[2]
# Local buildpacks are taken only from these folders: the test apps and the tests' temporary ones.
os.environ.setdefault("DEIS_LOCAL_BUILDPACK_DIRS", f"{Path(__file__).parent / 'apps'}:{tempfile.gettempdir()}")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}

# A Dockerfile app on the local stack image (no registry is reachable): serves /srv on $PORT.
BUILDER_DOCKERFILE = """FROM deis/stack:bookworm-1
COPY . /srv
WORKDIR /srv
EXPOSE 8080
CMD ["python3", "-m", "http.server", "8080"]
"""
BUILDER_WEB_PROCFILE = "web: cd /srv && exec python3 -m http.server $PORT\n"


def builder_wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def builder_serve(data_dir: Path, controller_url: str, port: int, log, **env: str) -> subprocess.Popen:
    """`python -m deis.builder serve` on 127.0.0.1:`port` with its own data dir; output into `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "deis.builder", "serve", "--host", "127.0.0.1"],
        env={**os.environ, "DEIS_DATA_DIR": str(data_dir), "DEIS_CONTROLLER_URL": controller_url,
             "DEIS_BUILDER_PORT": str(port), **env},
        stdout=log, stderr=subprocess.STDOUT, cwd=BUILDER_ROOT)


def builder_stop(server: subprocess.Popen) -> None:
    """SIGTERM, as `deis-platform down` does; SIGKILL after 10 s."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


def builder_wait_for(check, timeout: float = 20.0):
    """What `check()` returns once it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


@pytest.fixture
def builder_docker():
    """A client of the engine, with the stack's images made if missing."""
    import docker

    from deis.stack import ensure_images

    client = docker.from_env(timeout=600)
    ensure_images(client)
    yield client
    client.close()


def builder_new_key(path: Path) -> str:
    """An ed25519 key pair at `path` (OpenSSH format); returns the public key line."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment=path.name)
    key.write_private_key(str(path))
    path.chmod(0o600)
    return key.export_public_key().decode().strip()


@dataclass
class GitUser:
    """A platform user with a registered SSH key, running git and ssh as that user."""

    api: ApiUser
    key: Path
    ssh_port: int
    home: Path
    log_level: str = "ERROR"  # ssh shows auth banners from INFO on

    @property
    def name(self) -> str:
        return self.api.username

    def ssh_command(self) -> list[str]:
        return ["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", f"LogLevel={self.log_level}", "-p", str(self.ssh_port)]

    def env(self) -> dict:
        return {**os.environ, **GIT_IDENTITY, "HOME": str(self.home), "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_SSH_COMMAND": " ".join(self.ssh_command()), "GIT_TERMINAL_PROMPT": "0"}

    def remote(self, app: str) -> str:
        return f"ssh://git@127.0.0.1:{self.ssh_port}/{app}.git"

    def git(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True,
                              errors="replace", timeout=timeout)

    def ssh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ssh_command(), *args], env=self.env(), capture_output=True, text=True,
                              errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass
class BuilderPlatform:
    live: LiveController
    data_dir: Path
    http_port: int
    ssh_port: int
    namespace: str
    tmp: Path
    apps: list[str] = field(default_factory=list)

    def user(self, prefix: str = "dev", key: bool = True) -> GitUser:
        api = self.live.register(unique(prefix))
        home = self.tmp / f"home-{api.username}"
        home.mkdir()
        path = home / "id_ed25519"
        public = builder_new_key(path)
        if key:
            answer = api.post("/v1/keys", json={"id": f"{api.username}-key", "public": public})
            assert answer.status_code == 201, answer.text
        return GitUser(api, path, self.ssh_port, home)

    def app(self, owner: GitUser, prefix: str = "app") -> str:
        app = unique(prefix)
        answer = owner.api.post("/v1/apps", json={"id": app})
        assert answer.status_code == 201, answer.text
        self.apps.append(app)
        return app

    def get(self, app: str, path: str = "/") -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.http_port}{path}", headers={"Host": f"{app}.localhost"},
                            timeout=10)


@pytest.fixture(scope="session")
def builder_platform(tmp_path_factory):
    """Controller (Docker scheduler) + router + builder SSH server, all of this session's own."""
    import docker

    from deis.router import Router
    from deis.stack import ensure_images

    client = docker.from_env()
    ensure_images(client)
    namespace = f"deis-builder-{uuid.uuid4().hex[:8]}"
    http_port, https_port, ssh_port = free_port(), free_port(), free_port()
    data_dir = tmp_path_factory.mktemp("builder-platform")
    env = {"DEIS_SCHEDULER": "docker", "DEIS_DOCKER_NAMESPACE": namespace, "DEIS_STOP_GRACE": "2",
           "DEIS_SETTLE": "1", "DEIS_DEPLOY_TIMEOUT": "20", "DEIS_ROUTER_PORT": str(http_port),
           "DEIS_ROUTER_HTTPS_PORT": str(https_port)}
    router = Router(data_dir, http_port=http_port, https_port=https_port)
    router.start()
    controller, stop_controller = start_live_controller(data_dir, env, deployer=True)
    live = LiveController(controller)
    live.admin = live.register_admin("admin")
    log = open(data_dir / "builder-server.log", "ab")
    # test_concurrent_pushes_to_ten_apps... pushes as one user to ten apps at once (default limit: 5).
    server = builder_serve(data_dir, controller.url, ssh_port, log, DEIS_BUILDER_SESSIONS_PER_USER="12")
    platform = BuilderPlatform(live, data_dir, http_port, ssh_port, namespace,
                               tmp_path_factory.mktemp("builder-users"))
    try:
        builder_wait_for_port(ssh_port)
        yield platform
    finally:
        builder_stop(server)
        log.close()
        stop_controller()
        router.stop()
        purge(client, namespace)
        for app in platform.apps:
            for image in client.images.list(name=f"deis-apps/{app}"):
                for tag in image.tags:
                    client.images.remove(tag, force=True)


def git_make_repo(path: Path, files: dict[str, str | bytes], user: GitUser, app: str | None = None) -> Path:
    """A git repository at `path` with `files` committed on master (and the `deis` remote)."""
    path.mkdir(parents=True, exist_ok=True)
    assert user.git("init", "-q", "-b", "master", cwd=path).returncode == 0
    git_commit(path, files, user)
    if app:
        user.git("remote", "add", "deis", user.remote(app), cwd=path)
    return path


def git_commit(path: Path, files: dict[str, str | bytes], user: GitUser, message: str = "change") -> str:
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    user.git("add", "-A", cwd=path)
    done = user.git("commit", "-q", "--allow-empty", "-m", message, cwd=path)
    assert done.returncode == 0, done.stderr
    return user.git("rev-parse", "HEAD", cwd=path).stdout.strip()


def git_remote_sha(platform: BuilderPlatform, app: str, branch: str = "master") -> str | None:
    """What the builder's repository of `app` has on `branch` (None: no such branch, or no repository)."""
    done = subprocess.run(["git", "--git-dir", str(platform.data_dir / "builder" / "repos" / f"{app}.git"),
                           "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], capture_output=True, text=True)
    return done.stdout.strip() or None


@pytest.fixture
def builder_owner(builder_platform) -> GitUser:
    return builder_platform.user("owner")


@pytest.fixture
def git_dockerfile_app(builder_platform, builder_owner, tmp_path):
    """A new app of `builder_owner` and a work tree with a served Dockerfile app (not pushed yet)."""
    app = builder_platform.app(builder_owner)
    repo = git_make_repo(tmp_path / app, {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE,
                                          "index.html": "hello v1\n"}, builder_owner, app)
    return app, repo
