"""A Debian root filesystem made with debootstrap, since no image registry is reachable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# What the built-in buildpacks need (Python, Node.js, static, git buildpack URLs), plus the small
# things scripts expect of a Debian system (netbase: /etc/services; procps: ps; xz/unzip: archives).
PACKAGES = [
    "bash", "ca-certificates", "curl", "git", "gzip", "tar", "xz-utils", "unzip",
    "netbase", "procps", "tzdata",
    "python3", "python3-venv", "python3-pip",
    "nodejs",
]
# Installed afterwards with apt-get in a chroot: debootstrap's resolver ignores virtual packages
# (Provides), and npm's dependencies need them.
APT_PACKAGES = ["npm"]

# Left out of the image: package lists and caches (apt-get update restores lists), docs and
# message translations (processes run with LANG=C.UTF-8).
CLEAN_GLOBS = [
    "var/lib/apt/lists/*", "var/cache/apt/*", "var/cache/debconf/*-old", "var/log/*",
    "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*/",
    "tmp/*", "var/tmp/*",
    "root/.cache", "root/.npm", "etc/resolv.conf", "etc/hostname",
]


class RootfsError(RuntimeError):
    """debootstrap (or installing it) failed."""


def _sources_files() -> list[Path]:
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    return [f for f in files if f.is_file()]


def mirror_from_text(text: str, deb822: bool, suite: str = SUITE) -> str | None:
    """The first Debian mirror URI in one sources file that serves `suite` (not -security)."""
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []):
                uris = fields.get("uris") or []
                if uris:
                    return uris[0].rstrip("/")
        return None
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb" and line[2] == suite:
            return line[1].rstrip("/")
    return None


def host_mirror() -> str:
    """The host's Debian mirror (so a local mirror or proxy is honoured), else deb.debian.org."""
    for f in _sources_files():
        try:
            found = mirror_from_text(f.read_text(errors="replace"), f.suffix == ".sources")
        except OSError:
            continue
        if found and "security" not in found:
            return found
    return DEFAULT_MIRROR


def ensure_debootstrap(progress=print) -> str:
    path = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None)
    if path:
        return path
    progress("       installing debootstrap (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    path = shutil.which("debootstrap") or ("/usr/sbin/debootstrap"
                                          if os.path.exists("/usr/sbin/debootstrap") else None)
    if done.returncode != 0 or not path:
        raise RootfsError("could not install debootstrap:\n" + (done.stdout + done.stderr)[-2000:])
    return path


def debootstrap(target: Path, mirror: str | None = None, progress=print) -> None:
    """Install a minimal bookworm with PACKAGES into `target` (an empty directory)."""
    exe = ensure_debootstrap(progress)
    mirror = mirror or host_mirror()
    progress(f"       debootstrap {SUITE} from {mirror}")
    cmd = [exe, "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(target), mirror]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    if done.returncode != 0:
        log = target / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RootfsError(f"debootstrap failed (exit {done.returncode}):\n"
                          f"{done.stdout[-3000:]}\n{tail}")
    if APT_PACKAGES:
        progress("       apt-get install " + " ".join(APT_PACKAGES))
        apt_install(target, APT_PACKAGES)


def apt_install(target: Path, packages: list[str]) -> None:
    """apt-get install in a chroot of `target`, with /proc mounted for the maintainer scripts."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "HOME": "/root"}
    script = ("apt-get update -q && apt-get install -y -q --no-install-recommends "
              + " ".join(packages) + " && apt-get clean")
    proc = target / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        done = subprocess.run(["chroot", str(target), "sh", "-c", script], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
    finally:
        subprocess.run(["umount", "-l", str(proc)], capture_output=True, check=False)
    if done.returncode != 0:
        raise RootfsError(f"apt-get install {' '.join(packages)} failed (exit {done.returncode}):\n"
                          + done.stdout[-3000:])


def clean(target: Path) -> None:
    for pattern in CLEAN_GLOBS:
        for p in target.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    # apt expects these directories to exist.
    (target / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (target / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def unmount_below(target: Path) -> None:
    """Undo mounts a failed debootstrap may have left (proc, sys) so removing them is safe."""
    root = os.path.realpath(target)
    with open("/proc/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(root + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove(target: Path) -> None:
    unmount_below(target)
    with open("/proc/mounts") as f:
        root = os.path.realpath(target)
        if any(line.split()[1].startswith(root + "/") for line in f):
            raise RootfsError(f"{target} still has mounts below it; not removing it")
    shutil.rmtree(target, ignore_errors=True)


def tar_stream(target: Path) -> subprocess.Popen:
    """`tar` of the root filesystem on stdout, without the contents of /proc, /sys, /dev."""
    return subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(target),
         "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "--exclude=./debootstrap",
         "-cf", "-", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
