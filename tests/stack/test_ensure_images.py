"""ensure_images() is idempotent and the Debian mirror is taken from the host's apt sources."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from deis.stack import STACK_VERSION, StackImages, ensure_images, image_exists
from deis.stack.rootfs import mirror_from_text
from tests.stack.conftest import REPO


def test_second_call_builds_nothing(docker_client, images):
    said = []
    started = time.monotonic()
    again = ensure_images(docker_client, progress=said.append)
    assert again == images == StackImages(stack=f"deis/stack:{STACK_VERSION}",
                                          run=f"deis/run:{STACK_VERSION}")
    assert said == []
    assert time.monotonic() - started < 5


def test_image_exists(docker_client, images):
    assert image_exists(images.stack, docker_client)
    assert image_exists(images.run, docker_client)
    assert not image_exists("deis/stack:no-such-version", docker_client)


def test_command_prints_the_tags(images):
    done = subprocess.run([sys.executable, "-m", "deis.stack"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stack:", images.stack, "run:", images.run]


def test_mirror_from_deb822_sources():
    text = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""
    assert mirror_from_text(text, deb822=True) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources():
    text = ("# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n")
    assert mirror_from_text(text, deb822=False) == "http://mirror.example/debian"
    assert mirror_from_text("deb http://x.example/debian trixie main\n", deb822=False) is None


def test_builds_only_the_missing_run_image(docker_client, images):
    version = f"test-{uuid.uuid4().hex[:8]}"
    docker_client.images.get(images.stack).tag("deis/stack", version)
    said = []
    try:
        made = ensure_images(docker_client, progress=said.append, version=version)
        assert made == StackImages(stack=f"deis/stack:{version}", run=f"deis/run:{version}")
        assert image_exists(made.run, docker_client)
        assert [line for line in said if line.startswith("-----> ")] == [
            f"-----> Building the run image deis/run:{version}"]
        labels = docker_client.images.get(made.run).attrs["Config"]["Labels"]
        assert labels["io.deis.stack.version"] == version
    finally:
        for tag in (f"deis/run:{version}", f"deis/stack:{version}"):
            if image_exists(tag, docker_client):
                docker_client.images.remove(tag)
        (Path(tempfile.gettempdir()) / f"deis-stack-{version}.lock").unlink(missing_ok=True)
