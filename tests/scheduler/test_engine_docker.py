"""The engine suite against the Docker backend (busybox test image, a namespace of this session,
unique apps purged after each test: see conftest.py)."""

from __future__ import annotations

import http.client

import pytest

from deis.scheduler import ReleaseSpec

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
