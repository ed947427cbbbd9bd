"""Dockerfile builds: `docker build` of the pushed tree in the local engine, streamed as it happens.

Config vars become build args only when the app sets `DEIS_DOCKER_BUILD_ARGS=1` (they would
otherwise be baked into the image's history). Limits: the build's memory (`BuildLimits.memory`), its
CPUs (a cpuset of `BuildLimits.cpus` cores) and its time: the build ends when a line arrives after
the limit, or when no line arrives for that long (the engine cancels a build its client leaves).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from deis.builder import BuildError, BuildLimits, BuildResult, Output

BUILD_ARGS_VAR = "DEIS_DOCKER_BUILD_ARGS"
MAX_DOCKERFILE_CHARS = 65536  # what the controller's build hook accepts
INDENT = "       "


def wants_build_args(env: dict) -> bool:
    return str(env.get(BUILD_ARGS_VAR, "")).strip().lower() in ("1", "true", "yes", "on")


def read_procfile(source: Path) -> dict:
    """The tree's Procfile, else {} (the image's CMD then runs as process type `cmd`)."""
    from deis.builder import procfile  # written alongside; imported when first needed

    return procfile.read(source) or {}


def container_limits(limits: BuildLimits) -> dict:
    from docker.utils import parse_bytes

    memory = parse_bytes(limits.memory)
    result = {"memory": memory, "memswap": memory}
    cores = os.cpu_count() or 1
    if 0 < limits.cpus < cores:
        result["cpusetcpus"] = f"0-{max(1, math.ceil(limits.cpus)) - 1}"
    return result


class _Lines:
    """Re-cuts the engine's stream chunks into whole lines for `output`."""

    def __init__(self, output: Output):
        self.output, self.pending = output, ""

    def feed(self, text: str) -> None:
        self.pending += text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.output(INDENT + line.rstrip())

    def flush(self) -> None:
        self.feed("\n")


def build(source: Path, app: str, image: str, env: dict, output: Output,
          limits: BuildLimits | None = None, labels: dict | None = None) -> BuildResult:
    """Build `source` (which has a Dockerfile at its root) into `image`; BuildError with the
    engine's reason when it does not build."""
    import docker
    import requests
    import urllib3

    from deis.builder.procfile import read_text_inside

    limits, source = limits or BuildLimits(), Path(source)
    text = read_text_inside(source, "Dockerfile") or ""
    procfile = read_procfile(source)
    buildargs = {str(k): str(v) for k, v in env.items()} if wants_build_args(env) else None
    if buildargs:
        output(f"{INDENT}Config vars are passed as build args ({BUILD_ARGS_VAR} is set)")
    lines, started = _Lines(output), time.monotonic()
    client = docker.APIClient(version="auto", timeout=max(limits.timeout, 1))
    try:
        stream = client.build(path=str(source), tag=image, rm=True, forcerm=True, pull=False,
                              decode=True, labels=labels or {}, buildargs=buildargs,
                              container_limits=container_limits(limits))
        for item in stream:
            if time.monotonic() - started > limits.timeout:
                raise BuildError(f"The Docker build took longer than its limit of {limits.timeout:.0f}s "
                                 "(DEIS_BUILD_TIMEOUT).")
            if "stream" in item:
                lines.feed(item["stream"])
            elif "error" in item:
                lines.flush()
                raise BuildError(f"docker build: {item['error'].strip()}")
            elif item.get("status") and not item.get("progressDetail"):
                lines.feed(f"{item['status']} {item.get('id', '')}\n")
        lines.flush()
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:  # e.g. read timeout
        raise BuildError(f"The Docker build stopped: no output for {limits.timeout:.0f}s "
                         f"(DEIS_BUILD_TIMEOUT) or the engine went away ({exc}).") from exc
    except docker.errors.DockerException as exc:
        raise BuildError(f"docker build: {exc}") from exc
    finally:
        client.close()
    return BuildResult(image=image, procfile=procfile, dockerfile=text[:MAX_DOCKERFILE_CHARS] or "\n")
