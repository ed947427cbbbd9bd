"""Fixtures for the Docker backend: a running engine (scripts/docker.sh), the tiny busybox test
image, a label namespace of this session so nothing else on the machine is touched, and clean-up
of every container the tests made, even when they fail."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from deis.scheduler import ReleaseSpec
from deis.scheduler.docker import DockerScheduler, purge

from .busybox_image import ensure_image

ROOT = Path(__file__).resolve().parents[2]
WEB = "echo web $PORT up; exec httpd -f -v -p $PORT -h /www"
WORKER = "while true; do echo tick $DEIS_RELEASE; sleep 0.3; done"


@pytest.fixture(scope="session")
def docker_client():
    subprocess.run(["bash", str(ROOT / "scripts" / "docker.sh")], check=True)
    import docker

    client = docker.from_env(max_pool_size=32)
    client.ping()
    return client


@pytest.fixture(scope="session")
def image(docker_client) -> str:
    return ensure_image(docker_client)


@pytest.fixture(scope="session")
def namespace(docker_client):
    ns = f"deistest{uuid.uuid4().hex[:6]}"
    yield ns
    purge(docker_client, ns)


@pytest.fixture
def make_scheduler(docker_client, namespace, tmp_path):
    def make(**options):
        settings = {"client": docker_client, "namespace": namespace, "grace": 1, "deploy_timeout": 6,
                    "settle": 0.8, "poll": 0.1, "lock_dir": str(tmp_path / "locks"), "health_timeout": 1,
                    "min_uptime": 0.3, "crash_window": 3}
        settings.update(options)
        return DockerScheduler(**settings)

    return make


@pytest.fixture
def sched(make_scheduler) -> DockerScheduler:
    return make_scheduler()


@pytest.fixture
def new_app(docker_client, namespace):
    """Unique app names; their containers are removed after the test whatever happened."""
    names = []

    def make() -> str:
        name = f"t{uuid.uuid4().hex[:8]}"
        names.append(name)
        return name

    yield make
    for name in names:
        purge(docker_client, namespace, name)


@pytest.fixture
def app(new_app) -> str:
    return new_app()


@pytest.fixture
def spec(image):
    def make(app: str, version: int = 1, procfile=None, **fields) -> ReleaseSpec:
        procfile = {"web": WEB, "worker": WORKER} if procfile is None else procfile
        return ReleaseSpec(app=app, version=version, image=image, procfile=procfile, **fields)

    return make
