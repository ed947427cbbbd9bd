"""A builder killed (SIGKILL) in the middle of a push, with the real parts: `python -m deis.builder
serve` with a data directory of its own, git over SSH, the build container in the engine. Its build
container stops by itself, and its next start leaves nothing of the killed one: no build container,
no scratch folder; then a push works as usual (issue 9, point 8)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.builder.conftest import (
    builder_serve,
    builder_stop,
    builder_wait_for,
    builder_wait_for_port,
    git_commit,
    git_make_repo,
    git_remote_sha,
)
from tests.conftest import free_port

APPS = Path(__file__).resolve().parent / "apps"
# A buildpack that takes its time while the app has a file named `slow`.
SLOW_COMPILE = """#!/bin/bash
echo "-----> slow buildpack compiling $1"
if [ -e "$1/slow" ]; then echo "still compiling"; sleep 300; fi
"""


def status(container) -> str:
    container.reload()
    return container.status


def build_containers(client, app: str) -> list:
    """The build containers of `app`, whatever their state (deis-build-<app>-<8 hex>)."""
    return [c for c in client.containers.list(all=True, filters={"name": f"deis-build-{app}-"}, ignore_removed=True)
            if c.name.startswith(f"deis-build-{app}-")]


def scratch_folders(data_dir: Path, app: str, container) -> set[Path]:
    """Where a build of `app` keeps files on the host: its config-var folder (mounted into the build
    container) and its checkout, wherever they are."""
    env_dir = next(m["Source"] for m in container.attrs["Mounts"] if m["Destination"] == "/tmp/deis-env")
    roots = (Path(tempfile.gettempdir()), data_dir / "builder" / "tmp")
    return {Path(env_dir), *(p for root in roots if root.is_dir() for p in root.glob(f"deis-build-{app}-*"))}


def test_a_builder_killed_mid_build_leaves_nothing_behind_and_the_next_push_works(
        builder_platform, builder_docker, tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    data_dir.mkdir()
    # The session's controller and router; a builder of its own.
    platform = dataclasses.replace(builder_platform, data_dir=data_dir, ssh_port=port)
    owner = platform.user("killed")
    app = platform.app(owner, "killed")
    scratch, git_objects = data_dir / "builder" / "tmp", data_dir / "builder" / "repos" / f"{app}.git" / "objects"
    buildpack = tmp_path / "slow-buildpack"
    shutil.copytree(APPS / "buildpack-null", buildpack)
    (buildpack / "bin" / "compile").write_text(SLOW_COMPILE)
    repo = git_make_repo(tmp_path / app, {".buildpacks": f"{buildpack}\n", "slow": "",
                                          "index.html": "<p>after the restart</p>\n"}, owner, app)
    log = open(tmp_path / "builder.log", "ab")

    def serve() -> subprocess.Popen:
        server = builder_serve(data_dir, builder_platform.live.url, port, log,
                               DEIS_BUILDER_KEY=builder_platform.live.builder_key)
        builder_wait_for_port(port)
        return server

    server, pusher = serve(), None
    try:
        pusher = subprocess.Popen(["git", "push", "deis", "master"], cwd=repo, env=owner.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        building = builder_wait_for(lambda: [c for c in build_containers(builder_docker, app)
                                     if b"still compiling" in c.logs()], 120)
        [container] = building
        left = scratch_folders(data_dir, app, container)
        assert len(left) == 2, left  # the config-var folder and the checkout

        server.kill()
        server.wait(10)
        _, said = pusher.communicate(timeout=60)
        assert pusher.returncode != 0 and "remote: still compiling" in said, said
        assert git_remote_sha(platform, app) is None
        # The build container notices that its builder is gone.
        builder_wait_for(lambda: status(container) == "exited", 20)  # by itself: it would sleep for 300 s

        server = serve()  # listening: it has cleaned up by now
        assert build_containers(builder_docker, app) == []
        assert not [path for path in left if path.exists()], left
        assert list(scratch.iterdir()) == []
        assert list(git_objects.glob("tmp_objdir-incoming-*")) == []  # git's quarantine of the push

        (repo / "slow").unlink()
        sha = git_commit(repo, {}, owner, "not slow")
        pushed = owner.git("push", "deis", "master", cwd=repo)
        assert pushed.returncode == 0, pushed.stderr
        assert "remote: -----> Launching... done" in pushed.stderr, pushed.stderr
        assert "remote: !" not in pushed.stderr and "waiting" not in pushed.stderr, pushed.stderr
        assert git_remote_sha(platform, app) == sha
        assert platform.get(app, "/index.html").text == "<p>after the restart</p>\n"
    finally:
        if pusher is not None and pusher.poll() is None:
            pusher.kill()
        builder_stop(server)
        log.close()
        for container in build_containers(builder_docker, app):
            with contextlib.suppress(Exception):
                container.remove(force=True)
