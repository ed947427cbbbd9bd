"""Build containers started ahead of a push (deis.builder.slug.Standby) and the pre-receive hook's
hand-over to the builder's server (deis/builder/prereceive.py), with real Docker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest

from deis.builder import BuildLimits
from deis.builder.controller import Hooks
from deis.builder.repos import HOOK_CLIENT
from deis.builder.server import BuilderServer, run_in_thread
from deis.builder.slug import Standby, build_slug
from tests.conftest import free_port


@pytest.fixture
def docker_client():
    import docker

    from deis.stack import ensure_images

    client = docker.from_env(timeout=600)
    ensure_images(client)
    yield client
    client.close()


def labelled(client, labels: dict) -> list:
    """Containers with these labels, from the list alone (one removed meanwhile is not an error)."""
    return client.containers.list(all=True, sparse=True,
                                  filters={"label": [f"{k}={v}" for k, v in labels.items()]})


def wait_for(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def test_a_build_takes_the_container_started_ahead_and_removes_it(docker_client, tmp_path):
    labels = {"deis-test.standby": uuid.uuid4().hex}
    standby = Standby("ahead", tmp_path / "cache", BuildLimits(), labels)
    running = wait_for(lambda: [c for c in labelled(docker_client, labels) if c.status == "running"])
    assert len(running) == 1  # started before any source exists: it waits for it
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.html").write_text("<p>ahead</p>\n")
    image = f"deis-test-apps/ahead-{labels['deis-test.standby'][:8]}:v1"
    lines: list[str] = []
    try:
        result = build_slug(tmp_path / "src", "ahead", image, {"GREETING": "hi"}, tmp_path / "cache",
                            lines.append, BuildLimits(), standby=standby)
        assert result.image == image
        result.released()
        assert any("Static" in line and "detected" in line for line in lines), lines
        assert docker_client.images.get(image)
        assert standby.take() is None  # taken once, by the build
        wait_for(lambda: not labelled(docker_client, labels))
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image, force=True)


def test_a_standby_nobody_takes_is_removed_even_while_it_starts(docker_client, tmp_path):
    for wait_first in (True, False):
        labels = {"deis-test.standby": uuid.uuid4().hex}
        standby = Standby("unused", tmp_path / "cache", BuildLimits(), labels)
        if wait_first:
            wait_for(lambda: labelled(docker_client, labels))
        standby.discard()
        time.sleep(1.0)  # a discard during the start removes the container once it exists
        wait_for(lambda: not labelled(docker_client, labels))
        assert standby.take() is None


def test_a_build_whose_standby_failed_starts_its_own_container(docker_client, tmp_path, monkeypatch):
    from deis.builder import slug

    calls, create = [], slug._create

    def first_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the engine said no")
        return create(*args, **kwargs)

    monkeypatch.setattr(slug, "_create", first_fails)
    standby = Standby("failed", tmp_path / "cache", BuildLimits())
    wait_for(lambda: calls)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.html").write_text("<p>own</p>\n")
    image = f"deis-test-apps/own-{uuid.uuid4().hex[:8]}:v1"
    try:
        build_slug(tmp_path / "src", "own", image, {}, tmp_path / "cache", lambda line: None,
                   BuildLimits(), standby=standby)
        assert docker_client.images.get(image)
        assert len(calls) == 2
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image, force=True)


def test_the_server_removes_standbys_a_stopped_builder_left(docker_client, tmp_path):
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    other = {"io.deis.builder.standby": str(tmp_path / "another-builder")}
    from deis.stack import run_tag
    left = [docker_client.containers.create(run_tag(), ["true"], labels=labels)
            for labels in (server.standby_labels, other)]
    try:
        stop = run_in_thread(server)
        stop()
        assert not labelled(docker_client, server.standby_labels)
        assert labelled(docker_client, other)  # another builder's are its own business
    finally:
        for container in left:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def run_hook(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEIS_")}
    return subprocess.run([sys.executable, "-I", "-S", str(HOOK_CLIENT)], input="0 1 refs/heads/master\n",
                          env={**clean, **env}, capture_output=True, text=True, timeout=30)


def test_the_hook_refuses_pushes_that_do_not_come_through_the_builder(tmp_path):
    direct = run_hook({})
    assert direct.returncode == 1
    assert "Push through the Deis builder" in direct.stdout
    gone = run_hook({"DEIS_BUILDER_SOCKET": str(tmp_path / "none.sock"), "DEIS_PUSH_SESSION": "x"})
    assert gone.returncode == 1
    assert "The Deis builder cannot be reached" in gone.stdout


def test_the_server_refuses_a_hook_of_a_session_it_does_not_know(tmp_path):
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    stop = run_in_thread(server)
    try:
        forged = run_hook({"DEIS_BUILDER_SOCKET": server._hooks_server.path, "DEIS_PUSH_SESSION": "forged"})
        assert forged.returncode == 1
        assert "not one the builder knows" in forged.stdout
        assert oct(os.stat(server._hooks_server.directory).st_mode & 0o777) == "0o700"
    finally:
        stop()


def test_git_runs_without_the_builder_key_in_its_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEIS_BUILDER_KEY", "secret-key")
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    server = BuilderServer(tmp_path, Hooks("http://127.0.0.1:9", "secret-key"), host="127.0.0.1", port=0)

    class Process:
        env = {"GIT_PROTOCOL": "version=2"}

    env = server._env(Process())
    assert "DEIS_BUILDER_KEY" not in env and "secret-key" not in env.values()
    assert "GIT_DIR" not in env
    assert env["GIT_PROTOCOL"] == "version=2"
