"""Buildpack builds: the app is compiled at /app in one container of the run image (no Docker
socket, limited memory, CPU and time), which is then committed as the app's image."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import queue
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import yaml

from deis.builder import BuildError, BuildLimits, BuildResult, Output, gitsafe
from deis.builder.procfile import TYPE, read, read_text_inside
from deis.scheduler.limits import CAPABILITIES
from deis.scheduler.userns import hand_over

BUILDPACKS_DIR = Path(__file__).resolve().with_name("buildpacks")
BUILTIN = ("python", "nodejs", "static", "null")
ALIASES = {f"heroku/{name}": name for name in BUILTIN}
BUILD_ROOT = "/tmp/deis-build"  # runner, buildpacks, plan, env.sh: removed before the commit
CACHE_MOUNT = "/tmp/deis-cache"
ENV_MOUNT = "/tmp/deis-env"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONTROL = "::deis::"
CA_VARIABLES = ("PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                "npm_config_cafile", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE")
# Settings of the host passed to builds: package indexes (http(s) only) and proxies.
PASSED_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_DEFAULT_TIMEOUT",
                    "NPM_CONFIG_REGISTRY", "npm_config_registry", "HTTP_PROXY", "HTTPS_PROXY",
                    "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
STANDBY_LIMIT = 600  # seconds a started build container waits for its source
AFTER_SLUG_LIMIT = 600  # seconds the runner may take after the commit (saving the cache)
RELEASE_WAIT = 10  # seconds a committed build container waits for the release before saving the cache
GO_FIFO = "/tmp/deis-go.fifo"  # in the container's own file system
# The build container's command. A watcher reads its stdin, which the builder holds open as long as
# it lives (BuildContainer.lifeline): when the builder is gone, it kills every process of the
# container's own PID namespace but PID 1, the runner, which exits on TERM. Meanwhile the main shell
# waits for the source without using the CPU: a blocking read of a fifo, which the watcher writes
# `go` into when the builder sends `go` on stdin (BuildContainer.go, once BUILD_ROOT/go is copied
# in); the read also times out once a second, only to look for BUILD_ROOT/go in case the `go` line
# was lost (bash builtins only: no process is started while waiting). Then it runs the runner.
WAIT_THEN_RUN = ("trap 'exit 98' TERM; "
                 f"mkfifo -m 600 {GO_FIFO} && exec 4<>{GO_FIFO} || exit 97; "
                 "( while read -r word <&3; do [ \"$word\" = go ] && echo go >&4; done; "
                 "echo gone >&4; echo 'the builder is gone: the build stops'; "
                 "for _ in $(seq 60); do kill -TERM 1; kill -KILL -1; sleep 1; done ) 3<&0 </dev/null & "
                 f"exec </dev/null; for _ in $(seq {STANDBY_LIMIT}); do [ -e {BUILD_ROOT}/go ] && "
                 f"exec /bin/bash {BUILD_ROOT}/buildpacks/runner 4<&-; word=; read -r -t 1 -u 4 word; "
                 "[ \"$word\" = gone ] && exit 98; done; "
                 "echo 'the build container waited too long for its source'; exit 99")
COMMIT_CHANGES = ["USER app", "WORKDIR /app", 'ENTRYPOINT ["/usr/local/bin/deis-launch"]',
                  "CMD []", "ENV HOME=/app"]


# ---- .slugignore --------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern:
    """A gitignore-style pattern as a regex over paths relative to the root."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(out) + r"\Z")


def apply_slugignore(source: Path) -> list[str]:
    """Remove the paths `.slugignore` lists (gitignore syntax, no negation); return them, sorted."""
    text = read_text_inside(source, ".slugignore")
    if not text:
        return []
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        rules.append((_pattern_regex(line), line.endswith("/")))
    removed = []
    for top, dirs, files in os.walk(source):
        rel_top = os.path.relpath(top, source)
        for name in list(dirs) + files:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            path = Path(top) / name
            is_dir = path.is_dir() and not path.is_symlink()
            if rel == ".git":
                if name in dirs:
                    dirs.remove(name)
                continue
            if not any(rx.match(rel) and (is_dir or not dir_only)
                                        for rx, dir_only in rules):
                continue
            if is_dir:
                shutil.rmtree(path)
                dirs.remove(name)
            else:
                path.unlink()
            removed.append(rel)
    return sorted(removed)


# ---- what runs in the container ------------------------------------------------------------

def buildpack_plan(source: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """(kind, where) of the buildpacks to run without detection: BUILDPACK_URL, else .buildpacks.

    kind is "builtin" (a name), "local" (a directory on this host) or "git" (url#ref).
    """
    url = (env.get("BUILDPACK_URL") or "").strip()
    if url:
        return [_entry(url, "BUILDPACK_URL")]
    text = read_text_inside(source, ".buildpacks") or ""
    return [_entry(line.strip(), ".buildpacks") for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _entry(value: str, origin: str) -> tuple[str, str]:
    name = ALIASES.get(value, value)
    if name in BUILTIN:
        return "builtin", name
    reason = gitsafe.buildpack_url_error(value)
    if reason:  # nothing of it reaches git, on this host or in the build container
        raise BuildError(f"{origin}: invalid buildpack {value[:200]!r}: {reason} (a built-in buildpack "
                         f"({', '.join(BUILTIN)}), a local path, or an http(s):// or git:// URL, "
                         "optionally #branch, #tag or #commit)")
    if value.startswith(("/", "file:///")):
        location, _, ref = value.removeprefix("file://").partition("#")
        path = Path(location)
        allowed = local_buildpack_dirs()
        if not any(path.resolve().is_relative_to(root) for root in allowed):
            raise BuildError(f"{origin}: {location} is not in a folder this platform takes local buildpacks "
                             f"from ({', '.join(map(str, allowed)) or 'none'}; set DEIS_LOCAL_BUILDPACK_DIRS)")
        if ref or _is_git_repository(path):
            return "localgit", f"{location}#{ref}" if ref else location
        if not (path / "bin" / "compile").is_file():
            raise BuildError(f"{origin}: {location} is not a buildpack directory (no bin/compile)")
        return "local", location
    if gitsafe.git_location_error(value) is None:
        return "git", value
    raise BuildError(f"{origin}: {value!r} is neither a git URL, a local buildpack directory nor "
                     f"a built-in buildpack ({', '.join(BUILTIN)})")


def local_buildpack_dirs() -> list[Path]:
    """Where BUILDPACK_URL may name a local buildpack: DEIS_LOCAL_BUILDPACK_DIRS (colon-separated),
    else <data dir>/buildpacks. Any collaborator can set config, so not any folder of the host."""
    raw = os.environ.get("DEIS_LOCAL_BUILDPACK_DIRS")
    if raw is None:
        from deis.platform import default_data_dir
        raw = str(default_data_dir() / "buildpacks")
    return [Path(p).resolve() for p in raw.split(":") if p]


def _is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _clone_local(entry: str, output: Output) -> Path:
    """A local git buildpack (`path[#ref]`) checked out on this host: build containers see no host
    paths, so it goes in like a local directory, as committed at `ref` (default: its HEAD)."""
    location, _, ref = entry.partition("#")
    target = Path(tempfile.mkdtemp(prefix="deis-buildpack-"))
    # Not the pushed repository's git environment (GIT_DIR, the quarantine of a pre-receive hook).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    clone = subprocess.run(["git", "clone", "-q", "--", location, str(target / "bp")],
                           capture_output=True, text=True, env=env)
    if clone.returncode == 0 and ref:
        # The ref (checked by gitsafe) resolved to a commit first: checkout never sees it as an option.
        clone = subprocess.run(["git", "-C", str(target / "bp"), "rev-parse", "--verify", "-q",
                                "--end-of-options", f"{ref}^{{commit}}"], capture_output=True, text=True, env=env)
        if clone.returncode != 0 and not gitsafe.HEX.match(ref):
            clone = subprocess.run(["git", "-C", str(target / "bp"), "rev-parse", "--verify", "-q",
                                    "--end-of-options", f"origin/{ref}^{{commit}}"],
                                   capture_output=True, text=True, env=env)
        if clone.returncode == 0:
            clone = subprocess.run(["git", "-C", str(target / "bp"), "-c", "advice.detachedHead=false",
                                    "checkout", "-q", "--detach", clone.stdout.strip()],
                                   capture_output=True, text=True, env=env)
        else:
            clone.stderr = f"no branch, tag or commit {ref}"
    if clone.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise BuildError(f"BUILDPACK_URL: could not check out {entry}: {clone.stderr.strip().splitlines()[-1:]}")
    shutil.rmtree(target / "bp" / ".git", ignore_errors=True)
    if not (target / "bp" / "bin" / "compile").is_file():
        shutil.rmtree(target, ignore_errors=True)
        raise BuildError(f"BUILDPACK_URL: {entry} has no bin/compile")
    output(f"-----> Using the buildpack {entry}")
    return target


def build_environment(app: str, host_env: dict[str, str] | None = None) -> str:
    """env.sh sourced by the runner: a sane HOME and PATH, the CA bundle, the host's indexes."""
    host_env = os.environ if host_env is None else host_env
    from deis.stack import STACK_VERSION
    values = {"HOME": "/tmp/deis-home", "LANG": "C.UTF-8", "DEIS_APP": app,
              "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "STACK": f"deis-{STACK_VERSION}", "PYTHONUNBUFFERED": "1",
              "PIP_DISABLE_PIP_VERSION_CHECK": "1", "GIT_TERMINAL_PROMPT": "0"}
    if os.path.isfile(CA_BUNDLE):
        values.update({name: CA_BUNDLE for name in CA_VARIABLES})
    for name in PASSED_VARIABLES:
        value = host_env.get(name, "")
        if name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):  # file:// paths of the host are useless
            value = " ".join(u for u in value.split() if re.match(r"https?://", u))
        if value:
            values[name] = value
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def _add_tree(tar: tarfile.TarFile, path: Path, arcname: str, skip_git: bool = False) -> None:
    """Add a directory owned by root; symlinks stay symlinks (nothing outside `path` is read)."""
    def owned_by_root(info: tarfile.TarInfo):
        if skip_git and (info.name == f"{arcname}/.git" or info.name.startswith(f"{arcname}/.git/")):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info
    tar.add(str(path), arcname=arcname, filter=owned_by_root)


def _add_file(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _archive(fill) -> tempfile.SpooledTemporaryFile:
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        fill(tar)
    spool.seek(0)
    return spool


def _write_env_dir(path: Path, env: dict[str, str]) -> None:
    """One file per config var (name = key), readable by root only."""
    for key, value in env.items():
        if not key or "/" in key or key.startswith(".") or "\0" in key:
            continue
        (path / key).write_text(str(value))
        (path / key).chmod(0o600)


# ---- the build ----------------------------------------------------------------------------

def build_slug(source: Path, app: str, image: str, env: dict[str, str], cache_dir: Path,
               output: Output, limits: BuildLimits | None = None,
               labels: dict[str, str] | None = None, client=None, standby: Standby | None = None,
               container_labels: dict[str, str] | None = None) -> BuildResult:
    """Compile `source` with buildpacks into the image `image` (run image + one layer: /app).

    `standby`: a build container already started for this app (the SSH server starts one while the
    push is received); without one, or if it failed, a container is started here, with
    `container_labels` (`labels` are the image's)."""
    source, cache_dir, limits = Path(source), Path(cache_dir), limits or BuildLimits()
    previous = _saving.pop(cache_dir.resolve(), None)
    if previous is not None:  # the last build of this cache may still be saving it
        previous.released.set()
        previous.finished.join()
    procfile = read(source)  # a bad Procfile fails here, before any container starts
    plan = buildpack_plan(source, env)
    box, clones = None, []
    try:
        for index, (kind, where) in enumerate(plan):
            if kind == "localgit":
                clones.append(_clone_local(where, output))
                plan[index] = ("local", str(clones[-1] / "bp"))
        box = standby.take() if standby is not None else None
        if box is None or box.limits != limits or box.cache_dir != cache_dir.resolve():
            if box is not None:
                box.discard()
            own_client, client = client is None, client or _docker_client()
            run_image = _run_image(client, output)
            cache_dir.mkdir(parents=True, exist_ok=True)
            box = BuildContainer(client, run_image, app, cache_dir, limits, container_labels,
                                 own_client=own_client)
        box.go(source, plan, env)
        report = _run(box.container, output, limits, following=box.wake)
        result = _result(report, procfile, image)
        origin = "Procfile declares" if procfile is not None else "Default process"
        output(f"-----> {origin} types -> {', '.join(result.procfile) or '(none)'}")
        _commit(box, image, labels or {}, output)
        box.committed = True
        return dataclasses.replace(result, released=box.released.set)
    finally:
        for clone in clones:
            shutil.rmtree(clone, ignore_errors=True)
        if box is not None:
            box.discard()
            _saving[box.cache_dir] = box


class BuildContainer:
    """A started build container waiting for its source: the run image blocked on a fifo until
    `go` (at most STANDBY_LIMIT s; see WAIT_THEN_RUN), using no CPU meanwhile. Whatever it is
    doing, it stops once this process is gone (`lifeline`).

    Starting a container takes the engine 0.2-0.3 s: the SSH server starts one while a push is still
    being received (`Standby`), and `go()` hands it the source when the checkout is done."""

    def __init__(self, client, run_image: str, app: str, cache_dir: Path, limits: BuildLimits,
                 labels: dict[str, str] | None = None, own_client: bool = True):
        self.client, self.run_image, self.own_client = client, run_image, own_client
        self.app, self.limits, self.cache_dir = app, limits, Path(cache_dir).resolve()
        self.labels = labels or {}
        self.env_dir = Path(tempfile.mkdtemp(prefix="deis-build-env-"))
        self.container = self.lifeline = None
        self.committed = False
        self.released = threading.Event()  # set when the release no longer needs the machine
        self.finished: threading.Thread | None = None  # removes the container (see discard)
        try:
            self.container = _create(client, run_image, app, self.cache_dir, self.env_dir, limits, self.labels)
            # The container's stdin, open as long as this process lives (see WAIT_THEN_RUN).
            self.lifeline = self.container.attach_socket(params={"stdin": 1, "stream": 1})
            self.container.start()
        except BaseException:
            self.discard()
            raise

    def go(self, source: Path, plan: list[tuple[str, str]], env: dict[str, str]) -> None:
        """The config vars into ENV_DIR; in one archive the source at /app, the runner, buildpacks,
        env.sh and plan at BUILD_ROOT, and `go` last."""
        _write_env_dir(self.env_dir, env)
        hand_over(self.env_dir, self.client, always=True)
        lines = []

        def fill(tar):
            _add_tree(tar, source, "app", skip_git=True)
            _add_tree(tar, BUILDPACKS_DIR, "tmp/deis-build/buildpacks")
            _add_file(tar, "tmp/deis-build/env.sh", build_environment(self.app))
            for index, (kind, where) in enumerate(plan):
                location = where
                if kind == "local":
                    location = f"{BUILD_ROOT}/local/{index}"
                    _add_tree(tar, Path(where), f"tmp/deis-build/local/{index}")
                lines.append(f"{kind}\t{location}\t{where}\n")
            _add_file(tar, "tmp/deis-build/plan", "".join(lines))
            _add_file(tar, "tmp/deis-build/go", "")

        with _archive(fill) as tar:
            if not self.container.put_archive("/", tar):
                raise BuildError("could not copy the app into the build container")

    def wake(self) -> None:
        """Start the runner at once (see WAIT_THEN_RUN; without this, within a second of go())."""
        with contextlib.suppress(OSError, AttributeError):
            getattr(self.lifeline, "_sock", self.lifeline).sendall(b"go\n")

    def discard(self) -> None:
        """Remove the container in the background: the release does not need to wait for it. Once
        committed, the runner first does what buildpacks left for after the slug (saving the
        cache), but only when `released` is set (BuildResult.released, called once the release is
        deployed) or after RELEASE_WAIT s, so that it never slows the new release's start. Not a
        daemon thread (`finished`), so the process still ends only once the container is gone."""
        shutil.rmtree(self.env_dir, ignore_errors=True)
        container, self.container = self.container, None
        lifeline, self.lifeline = self.lifeline, None
        committed, released = self.committed, self.released

        def finish():
            if container is not None:
                if committed:
                    released.wait(RELEASE_WAIT)
                    _after_slug(container)
                _remove(container)
            if lifeline is not None:
                _hang_up(lifeline)
            if self.own_client:
                self.client.close()

        self.finished = threading.Thread(target=finish, name="remove-build-container")
        self.finished.start()


def _after_slug(container) -> None:
    """Tell the runner its container is committed (SIGUSR1), and let it finish (DEIS_AFTER_SLUG)."""
    import docker.errors
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        container.kill(signal="SIGUSR1")
        container.wait(timeout=AFTER_SLUG_LIMIT)


# cache dir -> the last build's container, which may still be saving it (BuildContainer.finished)
_saving: dict[Path, BuildContainer] = {}


class Standby:
    """A BuildContainer being started in a background thread for the next build of `app`."""

    def __init__(self, app: str, cache_dir: Path, limits: BuildLimits | None = None,
                 labels: dict[str, str] | None = None):
        self._lock = threading.Lock()
        self._box: BuildContainer | None = None
        self._taken = self._discarded = False
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._start, name=f"standby-{app}", daemon=True,
                                        args=(app, Path(cache_dir), limits or BuildLimits(), labels))
        self._thread.start()

    def _start(self, app, cache_dir, limits, labels) -> None:
        box = None
        try:
            from deis.stack import run_tag
            cache_dir.mkdir(parents=True, exist_ok=True)
            # No run image: this fails, and the build makes the image (with progress shown).
            box = BuildContainer(_docker_client(), run_tag(), app, cache_dir, limits, labels)
        except Exception:  # noqa: BLE001 - the build starts a container of its own and says why
            box = None
        with self._lock:
            self._box = box
            discard = self._discarded
        self._ready.set()
        if discard and box is not None:
            box.discard()

    def take(self, timeout: float = 60) -> BuildContainer | None:
        """The started container (None if it could not be started); only once."""
        self._ready.wait(timeout)
        with self._lock:
            if self._taken or self._discarded:
                return None
            if not self._ready.is_set():  # too slow: the thread removes it when it is done
                self._discarded = True
                return None
            self._taken = True
            return self._box

    def discard(self) -> None:
        """Not needed after all (a Dockerfile app, a refused push): remove it once started."""
        with self._lock:
            if self._taken or self._discarded:
                return
            self._discarded = True
            box = self._box if self._ready.is_set() else None
        if box is not None:
            box.discard()


def _run_image(client, output: Output) -> str:
    from deis.stack import StackBuildError, ensure_images
    try:
        return ensure_images(client, progress=output).run
    except StackBuildError as e:
        raise BuildError(f"the run image is missing and could not be built: {e}") from e


def _docker_client():
    import docker
    return docker.from_env(timeout=600)


def _create(client, run_image: str, app: str, cache_dir: Path, env_dir: Path, limits: BuildLimits,
            labels: dict[str, str] | None = None):
    from docker.types import Mount

    # Container root is an unprivileged uid on the host (userns-remap): the mounted directories
    # are made its own, private to it.
    hand_over(cache_dir, client)
    hand_over(env_dir, client)
    # Mounts, not `volumes`: those would leave VOLUME declarations in the committed image.
    mounts = [Mount(CACHE_MOUNT, str(cache_dir.resolve()), type="bind"),
              Mount(ENV_MOUNT, str(env_dir), type="bind", read_only=True)]
    if os.path.isfile(CA_BUNDLE):
        mounts.append(Mount(CA_BUNDLE, CA_BUNDLE, type="bind", read_only=True))
    cpus = min(float(limits.cpus), float(os.cpu_count() or 1))
    return client.containers.create(
        run_image, entrypoint=["/bin/bash", "-c", WAIT_THEN_RUN], command=[],
        user="root", working_dir="/app", mounts=mounts, labels=labels or {}, stdin_open=True,
        name=f"deis-build-{re.sub(r'[^A-Za-z0-9_.-]', '-', app)}-{uuid.uuid4().hex[:8]}",
        mem_limit=limits.memory, memswap_limit=limits.memory, nano_cpus=int(cpus * 1e9),
        pids_limit=4096, cap_drop=["ALL"], cap_add=list(CAPABILITIES), security_opt=["no-new-privileges"])


class _Report:
    """What the runner said besides the output: buildpacks, release YAML, error, completion."""

    def __init__(self):
        self.buildpacks: list[str] = []
        self.release: str | None = None
        self.error: str | None = None
        self.done = False
        self.last_line = ""

    def take(self, line: str, output: Output) -> None:
        if not line.startswith(CONTROL):
            output(line)
            if line.strip() and not line.lstrip().startswith("!"):  # a buildpack's own hint is no reason
                self.last_line = line.strip()
            return
        word, _, rest = line[len(CONTROL):].partition(" ")
        if word == "buildpack":
            self.buildpacks.append(rest)
        elif word == "release":
            try:
                self.release = base64.b64decode(rest).decode(errors="replace")
            except ValueError:  # binascii.Error: not what the runner printed
                self.error = "the output of the last buildpack's bin/release could not be read"
        elif word == "error":
            self.error = rest
        elif word == "done":
            self.done = True


_END = object()


def _read_lines(container, lines: queue.Queue, following=None) -> None:
    """The container's output (stdout and stderr), a line at a time, into `lines`; `following()`
    is called once the engine follows it (BuildContainer.wake: the runner may start then)."""
    buffer, received = b"", 0

    def take(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        while b"\n" in buffer or len(buffer) > 65536:
            line, sep, rest = buffer.partition(b"\n")
            buffer = rest if sep else b""
            lines.put(line.decode(errors="replace").rstrip("\r"))

    try:
        stream = container.logs(stream=True, follow=True)
        if following is not None:
            following()
        for chunk in stream:
            received += len(chunk)
            take(chunk)
        # The engine may end a follow that began as the container exited without what it printed
        # last: the rest from its whole log, once it has exited.
        with contextlib.suppress(Exception):
            container.wait(timeout=10)
            take(container.logs(stdout=True, stderr=True)[received:])
        if buffer:
            lines.put(buffer.decode(errors="replace").rstrip("\r"))
    except Exception as e:  # noqa: BLE001 (the stream broke: the exit status says the rest)
        lines.put(f"       (build output interrupted: {e})")
    finally:
        lines.put(_END)


def _run(container, output: Output, limits: BuildLimits, following=None) -> _Report:
    """Stream the build's lines to `output` (in this thread) until the runner is done; enforce the time limit."""
    report, lines = _Report(), queue.Queue()
    deadline = time.monotonic() + float(limits.timeout)
    threading.Thread(target=_read_lines, args=(container, lines, following), daemon=True).start()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill(container)
            raise BuildError(f"build exceeded its time limit of {limits.timeout:g} s")
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if line is _END:
            break
        report.take(line, output)
        if report.done and not report.error:
            return report  # the runner now waits to be committed and removed
    try:
        status = container.wait(timeout=max(deadline - time.monotonic(), 5))["StatusCode"]
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        # still running past its limit
        _kill(container)
        raise BuildError(f"build exceeded its time limit of {limits.timeout:g} s") from None
    container.reload()
    if status != 0 or not report.done or report.error:
        if container.attrs.get("State", {}).get("OOMKilled"):
            raise BuildError(f"build exceeded its memory limit of {limits.memory}")
        reason = report.error or f"the build failed (exit status {status})"
        if report.last_line and report.error and not report.error.startswith("no buildpack"):
            reason += f"; last output: {report.last_line}"
        raise BuildError(reason)
    return report


def _result(report: _Report, procfile: dict[str, str] | None, image: str) -> BuildResult:
    """The process types: the Procfile's, else the last buildpack's default_process_types."""
    name = ", ".join(report.buildpacks) or None
    if procfile is None:
        procfile = _default_process_types(report.release, report.buildpacks[-1:] or ["buildpack"])
    return BuildResult(image=image, procfile=procfile, buildpack=name)


def _default_process_types(release: str | None, last: list[str]) -> dict[str, str]:
    if not release or not release.strip():
        return {}
    try:
        data = yaml.safe_load(release)
    except yaml.YAMLError as e:
        raise BuildError(f"the {last[0]} buildpack's bin/release printed invalid YAML: {e}") from e
    types = (data or {}).get("default_process_types") if isinstance(data, dict) else None
    if not types:
        return {}
    if not isinstance(types, dict) or not all(
            isinstance(k, str) and TYPE.fullmatch(k) and isinstance(v, str) and v.strip()
            for k, v in types.items()):
        raise BuildError(f"the {last[0]} buildpack's bin/release has invalid "
                         f"default_process_types: {types!r}")
    return {k: v.strip() for k, v in types.items()}


def _split_image(image: str) -> tuple[str, str]:
    repository, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:
        return image, "latest"
    return repository, tag


def _commit(box: BuildContainer, image: str, labels: dict[str, str], output: Output) -> None:
    """The image gets `labels`; the build container's own ones are blanked (they cannot be removed)."""
    labels = {**dict.fromkeys(box.labels, ""), **labels}
    changes = COMMIT_CHANGES + [f"LABEL {json.dumps(str(k), ensure_ascii=False)}="
                                f"{json.dumps(str(v), ensure_ascii=False)}"
                                for k, v in labels.items()]
    repository, tag = _split_image(image)
    # The container has exited: no need to pause it.
    committed = box.container.commit(repository=repository, tag=tag, changes=changes, pause=False)
    size = committed.attrs["Size"] - box.client.images.get(box.run_image).attrs["Size"]
    output(f"-----> Compiled slug size is {max(size, 0) / 1e6:.1f} MB")


def _kill(container) -> None:
    import docker.errors
    with contextlib.suppress(docker.errors.APIError):  # it may have just exited
        container.kill()


def _remove(container) -> None:
    import docker.errors
    with contextlib.suppress(docker.errors.APIError):  # already gone
        container.remove(force=True)


def _hang_up(lifeline) -> None:
    """Close a build container's stdin connection for good (a SocketIO's close leaves its socket open)."""
    with contextlib.suppress(OSError):
        getattr(lifeline, "_sock", lifeline).shutdown(socket.SHUT_RDWR)
    lifeline.close()
