"""From pushed files to a running release: check the commit out, build it (a Dockerfile at the root
means `docker build`, anything else goes to the buildpacks), then make the release and deploy it
through the controller's build hook, printing each step to the person pushing as it happens.

Every failure is a BuildError whose message is the reason; the caller prints it and exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path

from deis.builder import BuildError, BuildLimits, BuildResult, Output, build_labels, gitsafe, image_name
from deis.builder.controller import HookError, Hooks
from deis.builder.repos import APP_NAME, acquire_app_lock, ensure_cache

STEP, INDENT = "-----> ", "       "
SUBMODULE_MODE = "160000"


def _git(repo: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, errors="replace",
                          env=env)
    if done.returncode != 0:
        raise BuildError(f"git {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def checkout(repo: Path, sha: str, dest: Path, output: Output, env: dict | None = None) -> None:
    """The commit's files into `dest` with `git archive | tar -x` (streamed, so large and binary
    files are fine). Submodules are not fetched: their folders stay empty, and the push says so.
    `env`: git's environment (a pre-receive hook's has the quarantine of the pushed objects). `sha` is a hex object name (hook.check_updates), never an option."""
    if gitsafe.object_id_error(sha):
        raise BuildError(f"Unexpected commit {sha[:80]!r}.")
    entries = [line.split("\t", 1) for line in _git(repo, "ls-tree", "-r", "-z", "--end-of-options", sha, env=env).split("\0")
               if line]
    if not entries:
        raise BuildError("The pushed commit has no files: there is nothing to build. "
                         "Commit your app's files and push again.")
    for meta, path in entries:
        if meta.startswith(SUBMODULE_MODE + " "):
            output(f"{INDENT}Submodule {path} is not fetched (submodules are not supported): "
                   "its folder stays empty; vendor its files if the app needs them.")
    archive = subprocess.Popen(["git", "archive", "--format=tar", "--end-of-options", sha], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # -p: the files' modes as committed, whatever the builder's umask (077, see __main__.py).
    untar = subprocess.run(["tar", "-x", "-p", "--no-same-owner", "-C", str(dest)], stdin=archive.stdout,
                           capture_output=True, text=True, errors="replace")
    archive.stdout.close()
    archive_error = archive.stderr.read().decode(errors="replace").strip()
    if archive.wait() != 0 or untar.returncode != 0:
        raise BuildError(f"Checking out {sha[:8]} failed: {archive_error or untar.stderr.strip()}")


def _describe(result: BuildResult, output: Output) -> None:
    """The process types, worded as the buildpack builds word them."""
    if result.procfile:
        output(f"{STEP}Procfile declares types -> {', '.join(result.procfile)}")
    else:
        output(f"{STEP}Default process types -> cmd (the image's CMD)")


def build(source: Path, app: str, sha: str, env: dict, output: Output, data_dir: Path,
          limits: BuildLimits | None = None, labels: dict | None = None, standby=None) -> BuildResult:
    """Build `source` into the app's image for `sha` (BuildError "Build failed: ..." otherwise).
    `standby`: a buildpack build container started ahead (deis.builder.slug.Standby), if any."""
    image = image_name(app, sha)
    try:
        if (source / "Dockerfile").is_file():
            from deis.builder import dockerfile

            if standby is not None:
                standby.discard()

            output(STEP + "Building Docker image")
            result = dockerfile.build(source, app, image, env, output, limits, labels)
            _describe(result, output)
            return result
        from deis.builder import slug  # the buildpack half, imported when first needed

        removed = slug.apply_slugignore(source)
        if removed:
            output(f"{STEP}Removed what .slugignore lists: {', '.join(removed[:10])}"
                   + (f" and {len(removed) - 10} more" if len(removed) > 10 else ""))
        cache = ensure_cache(data_dir, app)
        return slug.build_slug(source, app, image, env, cache, output, limits or BuildLimits(), labels or {},
                               standby=standby, container_labels=build_labels(data_dir))
    except BuildError as exc:
        message = str(exc)
        raise BuildError(message if message.startswith("Build failed") else f"Build failed: {message}") from exc


class BuildLog:
    """Passes output on and keeps its newest part, for the build record (`deis builds:info`)."""

    LIMIT = 256 * 1024  # characters; the controller's limit for a build's log

    def __init__(self, output: Output):
        self.output, self.lines, self.size = output, deque(), 0

    def __call__(self, line: str) -> None:
        self.output(line)
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.LIMIT and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)[-self.LIMIT:]


def release(hooks: Hooks, app: str, user: str, sha: str, result: BuildResult, output: Output,
            log: str = "") -> int:
    """Make the release and deploy it (the controller waits until it is healthy); its version."""
    try:
        answer = hooks.build(user, app, sha, result.image, dict(result.procfile), result.dockerfile, log)
    except HookError as exc:
        raise BuildError(f"Launching failed: {exc}" if exc.status != 503 else str(exc)) from exc
    version = answer["release"]["version"]
    if answer.get("rollout"):
        follow_rollout(hooks, app, user, version, output)
    output(f"{STEP}Launching... done, v{version}")
    for domain in answer.get("domains") or []:
        output(f"{INDENT}http://{domain}")
    return version


ROLLOUT_POLL = 0.2


def follow_rollout(hooks: Hooks, app: str, user: str, version: int, output: Output) -> None:
    """Print the rollout's steps of release `version` as the deployer writes them, until it is
    deployed (or superseded by a newer push); BuildError with the reason when it failed."""
    from deis.builder.controller import BUILD_HOOK_TIMEOUT

    shown: set[tuple] = set()
    deadline = time.monotonic() + BUILD_HOOK_TIMEOUT
    while True:
        try:
            answer = hooks.rollout(user, app, version)
        except HookError as exc:
            raise BuildError(f"Launching failed: {exc}") from exc
        rollout, release = answer["rollout"], answer["release"]
        if rollout.get("release") == version:
            for stamp, text in rollout.get("steps") or []:
                if (stamp, text) not in shown:
                    shown.add((stamp, text))
                    output(f"{INDENT}{text}")
        if release["state"] in ("deployed", "superseded"):
            return
        if release["state"] == "failed":
            reason = rollout.get("error") if rollout.get("release") == version else release["failure"]
            raise BuildError(f"{reason or 'v' + str(version) + ' was not deployed'}\n"
                             "The release running before keeps serving.")
        if time.monotonic() > deadline:
            raise BuildError(f"Launching v{version} is taking longer than {BUILD_HOOK_TIMEOUT:g} s; it goes on: "
                             f"see `deis releases -a {app}`.")
        time.sleep(ROLLOUT_POLL)


def deploy_source(source: Path, app: str, user: str, sha: str, hooks: Hooks, output: Output,
                  data_dir: Path, limits: BuildLimits | None = None, standby=None) -> int:
    """Build files already on disk and launch them; the new release's version."""
    config = hooks.config(user, app)  # also the access check
    env = {str(k): str(v) for k, v in (config.get("values") or {}).items()}
    labels = {"io.deis.builder.app": app, "io.deis.builder.sha": sha, "io.deis.builder.user": user}
    log = BuildLog(output)
    try:
        result = build(source, app, sha, env, log, data_dir, limits, labels, standby)
    except BuildError as exc:
        try:  # kept with its log for `deis builds:info`; the push fails either way
            hooks.build_failed(user, app, sha, log.text() + f"!     {exc}\n")
        except HookError:
            pass
        raise
    try:
        return release(hooks, app, user, sha, result, output, log.text())
    finally:
        result.released()


def deploy_commit(repo: Path, sha: str, app: str, user: str, hooks: Hooks, output: Output,
                  data_dir: Path, git_env: dict | None = None, standby=None) -> int:
    """What the pre-receive hook runs for a pushed commit."""
    with tempfile.TemporaryDirectory(prefix=f"deis-build-{app}-") as tmp:
        checkout(repo, sha, Path(tmp), output, git_env)
        return deploy_source(Path(tmp), app, user, sha, hooks, output, data_dir, standby=standby)


def tree_digest(path: Path) -> str:
    """40 hex digits naming a directory's content: local builds have no commit."""
    digest = hashlib.sha1()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            full = Path(root) / name
            digest.update(str(full.relative_to(path)).encode() + b"\0")
            digest.update(os.readlink(full).encode() if full.is_symlink() else full.read_bytes())
    return digest.hexdigest()


def deploy_directory(directory: Path, app: str, user: str, hooks: Hooks, output: Output,
                     data_dir: Path) -> int:
    """`python -m deis.builder build DIR`: build a directory without git or SSH, under the app's
    build lock like a push."""
    directory = Path(directory).resolve()
    if not APP_NAME.match(app):
        raise BuildError(f"No app named '{app}'.")
    if not directory.is_dir():
        raise BuildError(f"{directory} is not a directory.")
    sha = tree_digest(directory)
    with acquire_app_lock(data_dir, app, output), tempfile.TemporaryDirectory(prefix=f"deis-build-{app}-") as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(directory, source, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        if not any(source.iterdir()):
            raise BuildError(f"{directory} is empty: there is nothing to build.")
        return deploy_source(source, app, user, sha, hooks, output, data_dir)
