"""A whole platform for end-to-end tests: controller (Docker scheduler), HAProxy router, logger and
deployer, in a data directory, label namespace and ports of its own."""

import sys
import uuid

import docker
import pytest
import requests

from deis.platform import Daemon
from deis.router import Router
from deis.scheduler.docker import purge
from tests.conftest import LiveController, free_port, start_live_controller
from tests.scheduler.busybox_image import ensure_image

WEB = "exec httpd -f -p $PORT -h /www"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    client = docker.from_env()
    image = ensure_image(client)
    namespace = f"deis-e2e-{uuid.uuid4().hex[:8]}"
    http_port, https_port = free_port(), free_port()
    data_dir = tmp_path_factory.mktemp("e2e-platform")
    env = {"DEIS_SCHEDULER": "docker", "DEIS_DOCKER_NAMESPACE": namespace, "DEIS_STOP_GRACE": "2",
           "DEIS_SETTLE": "1", "DEIS_DEPLOY_TIMEOUT": "20", "DEIS_ROUTER_PORT": str(http_port),
           "DEIS_ROUTER_HTTPS_PORT": str(https_port), "DEIS_RECONCILE_INTERVAL": "1"}
    router = Router(data_dir, http_port=http_port, https_port=https_port)
    router.start()
    controller, stop = start_live_controller(data_dir, env, deployer=True)
    daemons = [Daemon("logger", [sys.executable, "-m", "deis.logger", "--data-dir", str(data_dir)], data_dir)]
    for daemon in daemons:
        daemon.start(controller.environment)
    live = LiveController(controller)
    live.admin = live.register_admin("admin")
    try:
        yield {"live": live, "image": image, "http_port": http_port, "https_port": https_port,
               "namespace": namespace, "data_dir": data_dir, "router": router, "client": client,
               "controller": controller}
    finally:
        for daemon in daemons:
            daemon.stop()
        stop()
        router.stop()
        purge(client, namespace)


def through_router(runtime, host, path="/"):
    return requests.get(f"http://127.0.0.1:{runtime['http_port']}{path}", headers={"Host": host}, timeout=10)
