"""Fixtures for the stack tests: a Docker client, the images (built once per machine), and a way to
run a throwaway container and always remove it."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from deis.stack import ensure_images

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docker_client():
    subprocess.run([str(REPO / "scripts" / "docker.sh")], check=True)
    import docker
    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_client):
    return ensure_images(docker_client)


def slug_tar(files: dict[str, str | tuple[str, int]], uid: int = 1000) -> bytes:
    """A tar of `files` (path relative to /app -> text, or (text, mode)), owned by `uid`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({str(p) for name in files for p in Path(name).parents if str(p) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
            tar.addfile(info)
        for name, content in files.items():
            text, mode = content if isinstance(content, tuple) else (content, 0o644)
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Runner:
    """Runs one container at a time to completion; every container it makes is removed."""

    def __init__(self, client):
        self.client = client

    def create(self, image, command=None, files=None, **kwargs):
        container = self.client.containers.create(
            image, command=command, name=f"deis-test-stack-{uuid.uuid4().hex[:12]}", **kwargs)
        try:
            if files:
                assert container.put_archive("/app", slug_tar(files))
        except BaseException:
            container.remove(force=True)
            raise
        return container

    def run(self, image, command=None, files=None, timeout=120, **kwargs) -> tuple[int, str]:
        """(exit code, stdout+stderr) of `command` in a new container of `image`."""
        container = self.create(image, command, files, **kwargs)
        try:
            container.start()
            code = container.wait(timeout=timeout)["StatusCode"]
            return code, container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)


@pytest.fixture(scope="session")
def runner(docker_client):
    return Runner(docker_client)
