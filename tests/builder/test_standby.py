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
from tests.builder.conftest import builder_wait_for
from tests.conftest import free_port


def labelled(client, labels: dict) -> list:
    """Containers with these labels, from the list alone (one removed meanwhile is not an error)."""
    return client.containers.list(all=True, sparse=True,
                                  filters={"label": [f"{k}={v}" for k, v in labels.items()]})


def test_a_build_takes_the_container_started_ahead_and_removes_it(builder_docker, tmp_path):
    labels = {"deis-test.standby": uuid.uuid4().hex}
    standby = Standby("ahead", tmp_path / "cache", BuildLimits(), labels)
    running = builder_wait_for(lambda: [c for c in labelled(builder_docker, labels) if c.status == "running"])
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
        assert builder_docker.images.get(image)
        assert standby.take() is None  # taken once, by the build
        builder_wait_for(lambda: not labelled(builder_docker, labels))
    finally:
        with contextlib.suppress(Exception):
            builder_docker.images.remove(image, force=True)


def test_a_standby_nobody_takes_is_removed_even_while_it_starts(builder_docker, tmp_path):
    for wait_first in (True, False):
        labels = {"deis-test.standby": uuid.uuid4().hex}
        standby = Standby("unused", tmp_path / "cache", BuildLimits(), labels)
        if wait_first:
            builder_wait_for(lambda: labelled(builder_docker, labels))
        standby.discard()
        time.sleep(1.0)  # a discard during the start removes the container once it exists
        builder_wait_for(lambda: not labelled(builder_docker, labels))
        assert standby.take() is None


def test_a_build_whose_standby_failed_starts_its_own_container(builder_docker, tmp_path, monkeypatch):
    from deis.builder import slug

    calls, create = [], slug._create

    def first_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the engine said no")
        return create(*args, **kwargs)

    monkeypatch.setattr(slug, "_create", first_fails)
    standby = Standby("failed", tmp_path / "cache", BuildLimits())
    builder_wait_for(lambda: calls)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.html").write_text("<p>own</p>\n")
    image = f"deis-test-apps/own-{uuid.uuid4().hex[:8]}:v1"
    try:
        build_slug(tmp_path / "src", "own", image, {}, tmp_path / "cache", lambda line: None,
                   BuildLimits(), standby=standby)
        assert builder_docker.images.get(image)
        assert len(calls) == 2
    finally:
        with contextlib.suppress(Exception):
            builder_docker.images.remove(image, force=True)


def test_the_server_removes_standbys_a_stopped_builder_left(builder_docker, tmp_path):
    from deis.builder import build_labels
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    mine, other = build_labels(tmp_path), build_labels(tmp_path / "another-builder")
    from deis.stack import run_tag
    left = [builder_docker.containers.create(run_tag(), ["true"], labels=labels) for labels in (mine, other)]
    try:
        stop = run_in_thread(server)
        stop()
        assert not labelled(builder_docker, mine)
        assert labelled(builder_docker, other)  # another builder's are its own business
    finally:
        for container in left:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_containers_of_a_built_app_image_survive_the_start_that_removes_leftover_build_containers(
        builder_docker, tmp_path):
    """Issue 9.1: the committed image kept the build container's label, so every start of the builder
    force-removed the containers of buildpack apps along with its leftover build containers."""
    import docker.errors

    from deis.builder import pipeline
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    app, token = f"survivor-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.html").write_text("<p>survivor</p>\n")
    leftover, app_container, image = server._standby(f"{app}-left", tmp_path).take(), None, None
    try:
        result = pipeline.build(tmp_path / "src", app, token, {}, lambda line: None, tmp_path,
                                standby=server._standby(app, tmp_path))
        result.released()
        image = result.image
        app_container = builder_docker.containers.run(image, entrypoint=["sleep", "120"], detach=True,
                                                     labels={"deis-test.survivor": token})
        leftover.container.reload()
        assert leftover.container.status == "running"  # a standby: what a killed builder leaves
        stop = run_in_thread(server)
        stop()
        with pytest.raises(docker.errors.NotFound):
            leftover.container.reload()
        survivors = labelled(builder_docker, {"deis-test.survivor": token})
        assert [c.id for c in survivors] == [app_container.id], "the app's container was removed"
    finally:
        if leftover is not None:
            leftover.discard()
        if app_container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                app_container.remove(force=True)
        if image is not None:
            with contextlib.suppress(Exception):
                builder_docker.images.remove(image, force=True)


def test_a_build_without_a_standby_labels_its_own_container_for_the_next_start(builder_docker, tmp_path):
    from deis.builder import build_labels, pipeline
    app, seen = f"own-{uuid.uuid4().hex[:8]}", []
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.html").write_text("<p>own</p>\n")

    def output(line: str) -> None:  # the build's first line: its container runs
        if not seen:
            seen.append(labelled(builder_docker, build_labels(tmp_path)))

    result = pipeline.build(tmp_path / "src", app, uuid.uuid4().hex, {}, output, tmp_path)
    try:
        assert [len(containers) for containers in seen] == [1]
    finally:
        result.released()
        with contextlib.suppress(Exception):
            builder_docker.images.remove(result.image, force=True)


def run_hook(env: dict, python: str = sys.executable, user: int | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEIS_")}
    return subprocess.run([python, "-I", "-S", str(HOOK_CLIENT)], input="0 1 refs/heads/master\n",
                          env={**clean, **env}, capture_output=True, text=True, timeout=30, user=user)


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
        assert server._hooks_server.path.startswith("@")  # abstract: no file a killed builder leaves
    finally:
        stop()


@pytest.mark.skipif(os.getuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                    reason="runs the hook as another user: needs root and a python outside /root")
def test_the_server_takes_hooks_of_its_own_user_only(tmp_path):
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    stop = run_in_thread(server)
    try:
        other = run_hook({"DEIS_BUILDER_SOCKET": server._hooks_server.path, "DEIS_PUSH_SESSION": "forged"},
                         python="/usr/bin/python3", user=65534)
        assert other.returncode == 1
        assert other.stdout.startswith("!     The Deis builder"), other.stdout  # cannot be reached, stopped
        assert "not one the builder knows" not in other.stdout  # refused before its request is read
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
