"""A tiny test image made locally (no registry): Debian's static busybox, its applets, a `bash`
wrapper for Procfile commands, a web root, EXPOSE 8080 and a web server as CMD.

Built once (tag deis-test/busybox:<hash of its contents>) and reused while present.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"
REPOSITORY = "deis-test/busybox"
BASH = b'#!/bin/sh\nexec /bin/sh "$@"\n'
INDEX = b"hello from busybox\n"
CHANGES = [
    "ENV PATH=/usr/local/bin:/usr/bin:/bin:/sbin:/usr/sbin",
    "EXPOSE 8080",
    'CMD ["/bin/sh", "-c", "exec httpd -f -p $PORT -h /www"]',
]


def _busybox() -> str:
    if not shutil.which("busybox") and not _exists(BUSYBOX):
        subprocess.run(["apt-get", "install", "-y", "-qq", "busybox-static"], check=True,
                       stdout=subprocess.DEVNULL, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return BUSYBOX if _exists(BUSYBOX) else shutil.which("busybox")


def _exists(path: str) -> bool:
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o755,
         link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))


def rootfs() -> bytes:
    busybox = _busybox()
    with open(busybox, "rb") as handle:
        binary = handle.read()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "www", "usr", "usr/bin", "sbin", "proc", "sys", "dev"):
            _add(tar, d, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", binary)
        for applet in sorted(set(applets) - {"busybox", "bash"}):
            _add(tar, f"bin/{applet}", link="busybox")
        _add(tar, "bin/bash", BASH)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", 0o644)
        _add(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)
        _add(tar, "www/index.html", INDEX, 0o644)
    return buf.getvalue()


def ensure_image(client) -> str:
    """The test image's tag, importing it when missing."""
    import docker.errors

    data = rootfs()
    digest = hashlib.sha256(data + "\n".join(CHANGES).encode()).hexdigest()[:12]
    tag = f"{REPOSITORY}:{digest}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    client.api.import_image_from_data(data, repository=REPOSITORY, tag=digest, changes=CHANGES)
    client.images.get(tag)
    return tag
