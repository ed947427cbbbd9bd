"""Dockerfile builds in the real engine, without the rest of the platform: output streamed line by
line, labels, build args only when the app asks, the engine's reason when a build fails, limits."""

from __future__ import annotations

import time
import uuid

import docker
import pytest

from deis.builder import BuildError, BuildLimits, image_name
from deis.builder.dockerfile import build
from deis.builder.procfile import ProcfileError

BASE = "FROM deis/stack:bookworm-1\n"


@pytest.fixture
def builder_image():
    """A fresh image tag for one test, removed afterwards."""
    client = docker.from_env()
    tag = image_name(f"dockerfile-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    yield tag
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass


def tree(path, files):
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_build_streams_lines_labels_the_image_and_reads_the_procfile(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE + 'ARG GREETING=unset\nRUN echo "greeting is $GREETING"\n'
                                                  'CMD ["sleep", "1"]\n',
                             "Procfile": "web: exec python3 -m http.server $PORT\nworker: sleep 100\n"})
    lines = []
    result = build(source, "app", builder_image, {"GREETING": "hi"}, lines.append,
                   labels={"io.deis.builder.app": "app"})
    assert result.image == builder_image and result.buildpack is None
    assert result.procfile == {"web": "exec python3 -m http.server $PORT", "worker": "sleep 100"}
    assert result.dockerfile.startswith("FROM deis/stack:bookworm-1")
    assert lines[0].startswith("       Step 1/") and lines[0].endswith(" : FROM deis/stack:bookworm-1")
    assert "       greeting is unset" in lines  # config vars are not build args by default
    assert all(line.startswith("       ") and "\n" not in line for line in lines)
    image = docker.from_env().images.get(builder_image)
    assert image.labels["io.deis.builder.app"] == "app"


def test_build_args_from_config_only_when_the_app_asks(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE + 'ARG GREETING=unset\nRUN echo "greeting is $GREETING"\n'})
    lines = []
    result = build(source, "app", builder_image, {"GREETING": "hi", "DEIS_DOCKER_BUILD_ARGS": "1"}, lines.append)
    assert "       greeting is hi" in lines
    assert any("passed as build args" in line for line in lines)
    assert result.procfile == {}  # no Procfile: the image's CMD runs as `cmd`


def test_a_failing_step_is_a_build_error_with_the_engine_reason(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE + "RUN echo about to fail && exit 7\n"})
    lines = []
    with pytest.raises(BuildError) as failure:
        build(source, "app", builder_image, {}, lines.append)
    assert "returned a non-zero code: 7" in str(failure.value)
    assert "       about to fail" in lines
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(builder_image)


def test_an_unknown_instruction_is_a_build_error(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE + "FROBNICATE all the things\n"})
    with pytest.raises(BuildError, match="(?i)unknown instruction: FROBNICATE"):
        build(source, "app", builder_image, {}, lambda line: None)


def test_a_bad_procfile_fails_before_building(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE, "Procfile": "web: ok\nweb: twice\n"})
    lines = []
    with pytest.raises(ProcfileError, match="line 2"):
        build(source, "app", builder_image, {}, lines.append)
    assert lines == []


def test_time_limit_ends_a_silent_build(tmp_path, builder_image):
    source = tree(tmp_path, {"Dockerfile": BASE + "RUN sleep 60\n"})
    started = time.monotonic()
    with pytest.raises(BuildError, match="DEIS_BUILD_TIMEOUT"):
        build(source, "app", builder_image, {}, lambda line: None, BuildLimits(timeout=3))
    assert time.monotonic() - started < 20


def test_memory_limit_applies_to_build_steps(tmp_path, builder_image):
    grab = "RUN python3 -c \"b = bytearray(400 * 1024 * 1024); print('allocated')\"\n"
    source = tree(tmp_path, {"Dockerfile": BASE + grab})
    with pytest.raises(BuildError, match="returned a non-zero code: 137"):
        build(source, "app", builder_image, {}, lambda line: None, BuildLimits(memory="64m"))
