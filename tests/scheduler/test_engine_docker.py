"""The engine suite against the Docker backend (busybox test image, a namespace of this session,
unique apps purged after each test: see conftest.py)."""

from __future__ import annotations

import http.client
import time

import pytest

from deis.scheduler import Convergence, ReleaseSpec
from deis.scheduler.docker import stats_usage

from .conftest import WEB, WORKER
from .engine_suite import EngineSuite

WEBS = {
    "ok": WEB,
    "crash": "echo crashing; exit 1",
    # Accepts every connection and never says a word (a server whose workers died).
    "hang": "exec nc -ll -p $PORT -e sleep 1000",
}


@pytest.fixture
def engine(make_scheduler):
    return make_scheduler(deploy_timeout=4)


class TestDockerEngine(EngineSuite):
    @pytest.fixture(autouse=True)
    def _image(self, image):
        self.image = image

    def make_spec(self, app, version, web="ok"):
        env = {"HEALTHCHECK_TIMEOUT": "1"} if web == "hang" else {}
        return ReleaseSpec(app=app, version=version, image=self.image, procfile={"web": WEBS[web], "worker": WORKER},
                           env=env)

    def serves(self, engine, endpoint) -> bool:
        conn = http.client.HTTPConnection(endpoint.address, endpoint.port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()


def test_usage_shows_a_busy_process_and_takes_about_a_second(engine, app, image):
    spec = ReleaseSpec(app=app, version=1, image=image, procfile={"web": WEB, "busy": "while :; do :; done"})
    engine.converge(Convergence(spec, {"web": 2, "busy": 1}))
    started = time.monotonic()
    usage = {u["type"]: u for u in engine.usage(app)}
    assert time.monotonic() - started < 5  # the samples are taken at once, not one after another
    assert usage["busy"]["cpu_percent"] > 20 and usage["web"]["cpu_percent"] < usage["busy"]["cpu_percent"]


def test_stats_usage_as_docker_stats_works_it_out():
    sample = {"cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}, "system_cpu_usage": 20_000_000_000,
                            "online_cpus": 4},
              "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 16_000_000_000},
              "memory_stats": {"usage": 100 << 20, "stats": {"inactive_file": 30 << 20}}}  # cgroup v2
    assert stats_usage(sample) == (100.0, 70 << 20)  # 1 s of CPU in 1 s of 4 CPUs' 4 s: one CPU
    v1 = {**sample, "memory_stats": {"usage": 100 << 20,
                                     "stats": {"total_inactive_file": 10 << 20, "inactive_file": 1}}}
    assert stats_usage(v1)[1] == 90 << 20
    first = {**sample, "precpu_stats": {"cpu_usage": {"total_usage": 0}}}  # no sample before (one-shot)
    assert stats_usage(first)[0] == 0.0 and stats_usage({}) == (0.0, 0)
