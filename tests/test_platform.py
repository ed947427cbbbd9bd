"""`deis-platform up|status|down` as `make up` runs it: idempotent, and down stops what up started."""

import os
import subprocess
import sys

from tests.conftest import free_port


def platform(command, env):
    return subprocess.run([sys.executable, "-m", "deis.platform", command], env=env,
                          capture_output=True, text=True, timeout=120)


def test_up_is_idempotent_and_down_stops_it(tmp_path):
    port = free_port()
    env = {**os.environ, "DEIS_DATA_DIR": str(tmp_path), "DEIS_CONTROLLER_PORT": str(port)}
    env.pop("DATABASE_URL", None)
    try:
        first = platform("up", env)
        assert first.returncode == 0, first.stderr
        assert "Deis is up." in first.stdout
        assert f"http://127.0.0.1:{port}" in first.stdout and "SQLite" in first.stdout
        assert "deis register" in first.stdout
        assert (tmp_path / "controller.sqlite3").exists()
        pid = (tmp_path / "run" / "controller.pid").read_text().strip()

        second = platform("up", env)
        assert second.returncode == 0, second.stderr
        assert "already up" in second.stdout and pid in second.stdout
        assert platform("status", env).returncode == 0
    finally:
        stopped = platform("down", env)
    assert "Stopped the controller." in stopped.stdout
    assert platform("status", env).returncode == 1
    assert "was not running" in platform("down", env).stdout
