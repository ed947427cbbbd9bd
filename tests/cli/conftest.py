"""Fixtures for the `deis` command tests: the real command in a subprocess, one HOME per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unique

PASSWORD = "s3cret-pass"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


class Deis:
    """Runs `python -m deis.cli` with its own HOME, in a working directory outside any git repository."""

    def __init__(self, home: Path, cwd: Path, url: str):
        self.home, self.cwd, self.url = home, cwd, url

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEIS_", "GIT_"))}
        env.update(HOME=str(self.home), BROWSER="true", GIT_CONFIG_NOSYSTEM="1", **extra)
        return env

    def __call__(self, *args: str, input: str | None = None, cwd: Path | None = None, **env) -> Result:
        done = subprocess.run([sys.executable, "-m", "deis.cli", *args], input=input, capture_output=True,
                              text=True, cwd=cwd or self.cwd, env=self.env(**env), timeout=120)
        result = Result(done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in result.text, result
        return result

    def ok(self, *args: str, **kwargs) -> Result:
        result = self(*args, **kwargs)
        assert result.code == 0, result
        return result

    def fails(self, *args: str, **kwargs) -> Result:
        """Runs a command that must fail: exit code 1 and an 'Error: ' line on stderr."""
        result = self(*args, **kwargs)
        assert result.code == 1, result
        assert "Error: " in result.err, result
        return result

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd or self.cwd, env=self.env(), capture_output=True,
                              text=True, check=True).stdout


@pytest.fixture
def deis(tmp_path, live) -> Deis:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return Deis(home, work, live.url)


def log_in(deis: Deis, api_user) -> None:
    """Save the settings `deis login` would (login itself is tested in test_auth; hashing is slow)."""
    folder = deis.home / ".deis"
    folder.mkdir(exist_ok=True)
    (folder / "client.json").write_text(json.dumps(
        {"controller": deis.url, "username": api_user.username, "token": api_user.token, "ssl_verify": True}))


@pytest.fixture
def user(deis, live):
    """A fresh user, logged in for the CLI; the ApiUser lets tests check the controller directly."""
    api_user = live.register(unique("user"), PASSWORD)
    log_in(deis, api_user)
    return api_user


@pytest.fixture
def app(deis, user) -> str:
    """An app of `user`, created with the CLI outside a git repository."""
    name = unique("app")
    deis.ok("create", name, "--no-remote")
    return name


@pytest.fixture
def repo(deis) -> Path:
    """An empty git repository as the working directory."""
    deis.git("init", "-q")
    return deis.cwd
