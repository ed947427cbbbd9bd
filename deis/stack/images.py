"""ensure_images(): build the stack and run images once per machine, reuse them afterwards."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from deis.stack import rootfs, run_image

# Bump when the recipe (packages, cleaning, Dockerfile, launcher) changes: new tags get built.
STACK_VERSION = "bookworm-1"
STACK_REPOSITORY = "deis/stack"
RUN_REPOSITORY = "deis/run"

STACK_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]


def say(line: str) -> None:
    print(line, flush=True)


class StackBuildError(RuntimeError):
    """Building the stack or run image failed."""


@dataclass(frozen=True)
class StackImages:
    stack: str
    run: str


def stack_tag(version: str = STACK_VERSION) -> str:
    return f"{STACK_REPOSITORY}:{version}"


def run_tag(version: str = STACK_VERSION) -> str:
    return f"{RUN_REPOSITORY}:{version}"


def _client(client):
    if client is None:
        import docker
        client = docker.from_env()
    return client


def image_exists(tag: str, client=None) -> bool:
    import docker.errors
    try:
        _client(client).images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _size(client, tag: str) -> str:
    return f"{client.images.get(tag).attrs.get('Size', 0) / 1e6:.0f} MB"


class _Lock:
    """One builder per machine: concurrent callers wait, then find the images built."""

    def __init__(self, version: str):
        self.path = Path(tempfile.gettempdir()) / f"deis-stack-{version}.lock"

    def __enter__(self):
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def build_stack(client, tag: str, progress=say, mirror: str | None = None) -> None:
    if os.geteuid() != 0:
        raise StackBuildError("building the stack image needs root (debootstrap)")
    target = Path(tempfile.mkdtemp(prefix="deis-stack-rootfs-"))
    try:
        try:
            rootfs.debootstrap(target, mirror=mirror, progress=progress)
        except rootfs.RootfsError as e:
            raise StackBuildError(str(e)) from e
        rootfs.clean(target)
        progress(f"       importing into Docker as {tag}")
        _import(client, target, tag)
    finally:
        rootfs.remove(target)


def _import(client, target: Path, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    tar = rootfs.tar_stream(target)
    saved = client.api.timeout
    client.api.timeout = 1800  # the daemon answers only once the whole layer is stored
    try:
        answer = client.api.import_image(src=tar.stdout, repository=repository, tag=version,
                                         changes=STACK_CHANGES, stream_src=True)
    finally:
        client.api.timeout = saved
        tar.stdout.close()
        err = tar.stderr.read().decode(errors="replace")
        tar.wait()
    if tar.returncode != 0:
        raise StackBuildError(f"tar of the root filesystem failed: {err[-2000:]}")
    if "error" in str(answer).lower() and not image_exists(tag, client):
        raise StackBuildError(f"docker import failed: {answer}")


def build_run(client, stack: str, tag: str, version: str = STACK_VERSION) -> None:
    import docker.errors
    try:
        client.images.build(fileobj=run_image.context(stack, version), custom_context=True,
                            tag=tag, rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as e:
        lines = "".join(str(x.get("stream") or x.get("error") or "") for x in e.build_log)
        raise StackBuildError(f"building {tag} failed: {e.msg}\n{lines[-2000:]}") from e


def ensure_images(client=None, progress=say, rebuild: bool = False,
                  version: str = STACK_VERSION) -> StackImages:
    """The stack and run images of `version`, building only what is missing (or all, on rebuild)."""
    client = _client(client)
    images = StackImages(stack=stack_tag(version), run=run_tag(version))
    if not rebuild and image_exists(images.stack, client) and image_exists(images.run, client):
        return images
    with _Lock(version):
        replaced = [_image_id(client, tag) for tag in (images.run, images.stack)] if rebuild else []
        stack_built = False
        if rebuild or not image_exists(images.stack, client):
            progress(f"-----> Building the stack image {images.stack} "
                     "(debootstrap, about two minutes, first time only)")
            started = time.monotonic()
            build_stack(client, images.stack, progress)
            stack_built = True
            progress(f"       done in {time.monotonic() - started:.0f}s "
                     f"({_size(client, images.stack)})")
        if rebuild or stack_built or not image_exists(images.run, client):
            progress(f"-----> Building the run image {images.run}")
            started = time.monotonic()
            build_run(client, images.stack, images.run, version)
            progress(f"       done in {time.monotonic() - started:.0f}s "
                     f"({_size(client, images.run)})")
        _remove_untagged(client, [i for i in replaced if i])
    return images


def _image_id(client, tag: str) -> str | None:
    return client.images.get(tag).id if image_exists(tag, client) else None


def _remove_untagged(client, ids: list[str]) -> None:
    """Drop images a rebuild replaced, unless still tagged or used (then Docker refuses: fine)."""
    import docker.errors
    for image_id in ids:
        try:
            if not client.images.get(image_id).tags:
                client.images.remove(image_id)
        except docker.errors.APIError:
            pass
