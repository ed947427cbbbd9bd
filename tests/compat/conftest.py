"""Fixtures to drive the original Deis v1.9.1 client (converted to Python 3) against the live controller.

Each `DeisCLI` is one user's terminal: its own HOME (so its own ~/.deis/client.json) and a working
directory; every command runs `python deis.py <args>` as a subprocess, as a user would type `deis ...`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import unique

from .convert import write_client

PASSWORD = "s3cret-pass"  # the live fixture registers `admin` with this password too


# Output that shows a known way the controller deviated from what the v1 client expects; describe()
# names it so that a failing assertion says what to fix in the controller.
MISMATCH_HINTS = {
    "done, vv": "CONTROLLER MISMATCH: the Deis-Release header reads 'v<N>'; the v1 client prints "
                "'done, v{header}' and so expects the bare release number <N> (Deis v1 sent release.version).",
    '{"username":["This field may not be null."]}': (
        "CONTROLLER MISMATCH: the v1 client's auth:passwd always sends \"username\": null when --username "
        "is not given; the controller must treat null as absent (Deis v1: `if request.data.get('username')`)."),
}


@dataclass
class Result:
    args: tuple
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.stdout.splitlines()]

    def describe(self) -> str:
        hints = "".join(f"\n!!! {hint}" for text, hint in MISMATCH_HINTS.items() if text in self.stdout)
        return (f"`deis {' '.join(self.args)}` exited {self.returncode}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}{hints}")

    def ok(self) -> "Result":
        assert self.returncode == 0, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        return self

    def fails(self) -> "Result":
        """The client reported an error and exited 1 (not a crash of the converted client)."""
        assert self.returncode == 1, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        return self

    def error(self, status: str, *details: str) -> "Result":
        """The client's report of an error answer: `<status> <reason>` ends a line (it may follow a
        progress message such as "Creating config... "), then the controller's detail; exit code 1."""
        self.fails()
        assert any(line.endswith(status) for line in self.lines), f"expected {status!r} in " + self.describe()
        return self.has(*details)

    def has(self, *texts: str) -> "Result":
        for text in texts:
            assert text in self.stdout, f"expected {text!r} in the output of " + self.describe()
        return self

    def has_line(self, *lines: str) -> "Result":
        for line in lines:
            assert line.rstrip() in self.lines, f"expected the line {line!r} in the output of " + self.describe()
        return self

    def lacks(self, *texts: str) -> "Result":
        for text in texts:
            assert text not in self.stdout, f"did not expect {text!r} in the output of " + self.describe()
        return self


class DeisCLI:
    """One user at one terminal running the v1 client."""

    def __init__(self, client: Path, home: Path, controller: str, username: str | None = None):
        self.client, self.home, self.controller, self.username = client, home, controller, username
        self.home.mkdir(parents=True, exist_ok=True)
        self.cwd = home
        self.progress = False

    @property
    def host(self) -> str:
        """The controller's host name, which the client puts in git remotes."""
        return urlsplit(self.controller).hostname

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
               and not k.startswith(("DEIS_", "GIT_"))}
        env.update(HOME=str(self.home), LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8",
                   GIT_CONFIG_NOSYSTEM="1", PYTHONWARNINGS="ignore")
        if not self.progress:
            env["DEIS_HIDE_PROGRESS"] = "1"  # the client's own switch for its spinner (each frame waits 0.4 s)
        return env

    def __call__(self, *args: str, cwd: Path | None = None, input: str | None = None) -> Result:
        answer = subprocess.run([sys.executable, str(self.client), *args], cwd=cwd or self.cwd, env=self.env(),
                                capture_output=True, text=True, timeout=120,
                                input=input if input is not None else "",)
        return Result(args, answer.returncode, answer.stdout, answer.stderr)

    def git(self, *args: str, cwd: Path) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True,
                              check=True, timeout=60).stdout

    def git_repo(self, name: str) -> Path:
        repo = self.home / name
        repo.mkdir()
        self.git("init", "-q", cwd=repo)
        return repo

    @property
    def settings(self) -> dict:
        return json.loads((self.home / ".deis" / "client.json").read_text())

    def register(self, username: str | None = None) -> "DeisCLI":
        self.username = username or unique("v1user")
        self("register", self.controller, f"--username={self.username}", f"--password={PASSWORD}",
             f"--email={self.username}@example.com").ok().has_line(
                 f"Registered {self.username}", f"Logged in as {self.username}")
        return self

    def login(self, username: str, password: str = PASSWORD) -> "DeisCLI":
        self.username = username
        self("login", self.controller, f"--username={username}", f"--password={password}").ok().has_line(
            f"Logged in as {username}")
        return self

    def create_app(self, name: str | None = None) -> str:
        name = name or unique("v1app")
        self("apps:create", name, "--no-remote").ok().has_line(f"Creating application... done, created {name}")
        return name


@pytest.fixture(scope="session")
def deis_client(tmp_path_factory) -> Path:
    """The converted client, deis.py, in a folder of its own."""
    path, _ = write_client(tmp_path_factory.mktemp("deis-v1-client"))
    return path


@pytest.fixture
def terminal(deis_client, live, tmp_path):
    """A factory of terminals (fresh HOMEs) on the live controller; `admin` is registered already."""
    live.admin  # the fixture registers the admin first
    count = 0

    def make() -> DeisCLI:
        nonlocal count
        count += 1
        return DeisCLI(deis_client, tmp_path / f"home{count}", live.url)

    return make


@pytest.fixture
def user(terminal) -> DeisCLI:
    """A terminal where a fresh user registered (and so logged in) with the v1 client."""
    return terminal().register()
