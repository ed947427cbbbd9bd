"""The builder: `git push` over SSH -> build (buildpacks or Dockerfile) -> release through the controller.

Shared vocabulary of its modules:
- `BuildError`: a build failed; its message is the reason shown to the person pushing.
- `BuildResult`: what a build made (the image and its process types).
- `BuildLimits`: memory, CPU and time limits of a build container (settable through the environment).
- `ServerSettings`: the SSH server's settings (sessions per user), from the environment.
- `build_labels`: the labels of a builder's build containers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deis.images import image_repository  # the rule of where an app's images live (destroy removes them)

# Receives the build's output a line at a time (no trailing newline), as it happens.
Output = Callable[[str], None]


class BuildError(Exception):
    """A build failed; str(exc) says why, in words for the person pushing."""


@dataclass(frozen=True)
class BuildResult:
    image: str                                         # tag of the built image
    procfile: dict[str, str] = field(default_factory=dict)  # Procfile, else the buildpack's defaults
    buildpack: str | None = None                       # buildpack name(s); None for Dockerfile builds
    dockerfile: str = ""                               # the Dockerfile's text for Dockerfile builds
    # Called once the release is deployed (or failed): the build's leftover work may use the machine.
    released: Callable[[], None] = field(default=lambda: None, compare=False, repr=False)


@dataclass(frozen=True)
class BuildLimits:
    memory: str = os.environ.get("DEIS_BUILD_MEMORY", "2g")
    cpus: float = float(os.environ.get("DEIS_BUILD_CPUS", "2"))
    timeout: float = float(os.environ.get("DEIS_BUILD_TIMEOUT", "900"))  # seconds


@dataclass(frozen=True)
class ServerSettings:
    """The SSH server's own settings (the environment is read here, once)."""

    # git sessions (push, clone, fetch) one user may have open at once; the next is refused at once.
    sessions_per_user: int = int(os.environ.get("DEIS_BUILDER_SESSIONS_PER_USER", "5"))
    # What the builder's processes create is theirs alone: repositories, caches, scratch folders.
    umask: int = 0o077


def build_labels(data_dir: Path) -> dict[str, str]:
    """Labels of every build container started for the builder of `data_dir`: its next start removes
    those a killed builder left. Commits blank them (a label cannot be deleted), so that containers
    run from an app's image never carry them."""
    return {"io.deis.builder.build-container": str(Path(data_dir).resolve())}


def image_name(app: str, sha: str) -> str:
    """The tag of an app's built image: deis-apps/<app>:git-<sha8>."""
    return f"{image_repository(app)}:git-{sha[:8]}"
