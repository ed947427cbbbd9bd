"""Restart the Docker Engine under a running app: it comes back, routed to its new addresses, and
its logs go on being collected. (The engine restart is real: dockerd is stopped and started again
with scripts/docker.sh, as `make up` starts it.)"""

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.conftest import unique
from tests.e2e.conftest import WEB, through_router

ROOT = Path(__file__).resolve().parents[2]


def engine_answers() -> bool:
    done = subprocess.run(["curl", "-sf", "--unix-socket", "/var/run/docker.sock", "http://localhost/_ping"],
                          capture_output=True)
    return done.returncode == 0


def restart_dockerd() -> None:
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "dockerd did not stop"
    subprocess.run([str(ROOT / "scripts" / "docker.sh")], check=True)
    assert engine_answers()


def test_apps_come_back_after_the_engine_restarts(runtime):
    user = runtime["live"].register(unique("dev"))
    app = unique("engine")
    user.post("/v1/apps", json={"id": app})
    ticker = "while true; do echo tick; sleep 0.5; done"
    assert user.post(f"/v1/apps/{app}/builds", json={
        "image": runtime["image"], "procfile": {"web": WEB, "ticker": ticker}}).status_code == 201
    assert user.post(f"/v1/apps/{app}/scale", json={"web": 2, "ticker": 1}).status_code == 204
    assert through_router(runtime, f"{app}.localhost").status_code == 200

    restart_dockerd()

    def serving():
        try:
            return through_router(runtime, f"{app}.localhost").status_code == 200
        except requests.RequestException:
            return False

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not serving():
        time.sleep(0.5)
    assert serving()
    wanted = [(f"{app}.v2.ticker.1", "up"), (f"{app}.v2.web.1", "up"), (f"{app}.v2.web.2", "up")]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = sorted((p["name"], p["state"]) for p in user.get(f"/v1/apps/{app}/containers").json()["results"])
        if states == wanted:
            break
        time.sleep(0.5)
    assert states == wanted
    # Every request lands on a live process: both upstreams answer.
    assert all(through_router(runtime, f"{app}.localhost").status_code == 200 for _ in range(10))
    # The logger reconnected to the engine: the ticker's lines after the restart are collected.
    def ticks():
        return user.get(f"/v1/apps/{app}/logs", params={"log_lines": 1000}).text.count(f"{app}[ticker.1]: tick")

    before = ticks()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ticks() < before + 4:
        time.sleep(0.5)
    logger_log = (runtime["data_dir"] / "logs" / "logger.log").read_text()[-3000:]
    assert ticks() >= before + 4, logger_log
    user.delete(f"/v1/apps/{app}")
