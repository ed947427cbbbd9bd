"""`deis-platform up|status|down` as `make up` runs it: idempotent, and down stops what up started."""

import os
import subprocess
import sys

import requests

from tests.conftest import free_port


def platform(command, env):
    return subprocess.run([sys.executable, "-m", "deis.platform", command], env=env,
                          capture_output=True, text=True, timeout=120)


def test_up_is_idempotent_and_down_stops_it(tmp_path):
    port, router_port = free_port(), free_port()
    env = {**os.environ, "DEIS_DATA_DIR": str(tmp_path), "DEIS_CONTROLLER_PORT": str(port),
           "DEIS_ROUTER_PORT": str(router_port), "DEIS_ROUTER_HTTPS_PORT": "0"}
    env.pop("DATABASE_URL", None)
    try:
        first = platform("up", env)
        assert first.returncode == 0, first.stderr
        assert "Deis is up." in first.stdout
        assert f"http://127.0.0.1:{port}" in first.stdout and "SQLite" in first.stdout
        assert "deis register" in first.stdout
        assert f"Started the router on port {router_port}" in first.stdout
        assert f"http://<app>.localhost:{router_port}/" in first.stdout
        assert requests.get(f"http://127.0.0.1:{router_port}/", headers={"Host": "nope.localhost"}).status_code == 404
        assert (tmp_path / "controller.sqlite3").exists()
        pid = (tmp_path / "run" / "controller.pid").read_text().strip()

        second = platform("up", env)
        assert second.returncode == 0, second.stderr
        assert "already up" in second.stdout and pid in second.stdout
        assert platform("status", env).returncode == 0
    finally:
        stopped = platform("down", env)
    assert "Stopped the controller." in stopped.stdout and "Stopped the router." in stopped.stdout
    assert platform("status", env).returncode == 1
    assert "was not running" in platform("down", env).stdout
