"""Dockerfile builds: `docker build` of the pushed tree in the local engine, streamed as it happens.

Config vars become build args only when the app sets `DEIS_DOCKER_BUILD_ARGS=1` (they would
otherwise be baked into the image's history). Limits: the build's memory (`BuildLimits.memory`), its
CPUs (a cpuset of `BuildLimits.cpus` cores) and its time: when the time is up, the container of the
step running then is killed, which ends the build.
"""

from __future__ import annotations

import math
import os
import re
import threading
from pathlib import Path

from deis.builder import BuildError, BuildLimits, BuildResult, Output

BUILD_ARGS_VAR = "DEIS_DOCKER_BUILD_ARGS"
MAX_DOCKERFILE_CHARS = 65536  # what the controller's build hook accepts
INDENT = "       "
RUNNING = re.compile(r"---> Running in ([0-9a-f]{12,64})")


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


class _Deadline:
    """Kills the container of the running step once the build's time is up (the engine then fails
    the step and ends the build); the steps are known from the engine's `Running in <id>` lines."""

    def __init__(self, seconds: float):
        self.seconds, self.step, self.expired = seconds, None, False
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True
        self.timer.start()

    def saw(self, text: str) -> None:
        for match in RUNNING.finditer(text):
            self.step = match.group(1)
        if self.expired:
            self.expire()

    def expire(self) -> None:
        import docker

        self.expired = True
        if self.step:
            try:
                with docker.APIClient(version="auto") as client:
                    client.kill(self.step)
            except docker.errors.APIError:
                pass  # the step ended meanwhile

    def error(self) -> BuildError:
        return BuildError(f"The Docker build took longer than its limit of {self.seconds:g} s "
                          "(DEIS_BUILD_TIMEOUT).")


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
    lines, deadline = _Lines(output), _Deadline(limits.timeout)
    client = docker.APIClient(version="auto")
    try:
        stream = client.build(path=str(source), tag=image, rm=True, forcerm=True, pull=False,
                              decode=True, labels=labels or {}, buildargs=buildargs,
                              container_limits=container_limits(limits), timeout=limits.timeout + 60)
        for item in stream:
            if "stream" in item:
                deadline.saw(item["stream"])
                lines.feed(item["stream"])
            elif "error" in item:
                lines.flush()
                raise deadline.error() if deadline.expired else BuildError(f"docker build: {item['error'].strip()}")
            elif item.get("status") and not item.get("progressDetail"):
                lines.feed(f"{item['status']} {item.get('id', '')}\n")
            if deadline.expired:
                raise deadline.error()
        lines.flush()
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:  # e.g. read timeout
        raise BuildError(f"The Docker build stopped: {exc}") from exc
    except docker.errors.DockerException as exc:
        raise BuildError(f"docker build: {exc}") from exc
    finally:
        deadline.timer.cancel()
        client.close()
    return BuildResult(image=image, procfile=procfile, dockerfile=text[:MAX_DOCKERFILE_CHARS] or "\n")
