"""GET /v1/apps/<app>/metrics and GET /v1/metrics: the router's numbers as the logger's receiver
wrote them (through its real socket), the processes' usage from the engine, who may see what."""

import socket

import pytest

from deis.controller.api import metrics
from deis.logger import router_log
from deis.scheduler import Convergence, ReleaseSpec, SchedulerError
from deis.scheduler.fake import FakeScheduler

from .conftest import make_user

pytestmark = pytest.mark.django_db


def line(app, status=200, ms=12, out=500, into=80) -> bytes:
    return (f'deis-router app={app} status={status} bytes_out={out} bytes_in={into} ms={ms} method=GET '
            f'path="/" client=127.0.0.1 server=p_10_0_0_1_5000 rid=0123456789abcdef').encode()


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def routed(data_dir):
    """Send router lines to a receiver in `data_dir`, as HAProxy would, and have them written."""
    receiver = router_log.Receiver(data_dir).bind()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(*datagrams):
        for datagram in datagrams:
            sender.sendto(datagram, str(receiver.path))
        receiver.receive()
        receiver.flush()

    yield send
    sender.close()
    receiver.close()


@pytest.fixture
def fake_engine(settings):
    settings.SCHEDULER_BACKEND = "fake"
    engine = FakeScheduler.shared()
    engine.reset()
    yield engine
    engine.reset()


def test_the_apps_windows_from_the_router(alice, app, routed):
    routed(*[line(app) for _ in range(7)], line(app, 404), line(app, 502, ms=900), line("other-app"))
    answer = alice.get(f"/v1/apps/{app}/metrics")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["app"] == app and set(body["windows"]) == {"1m", "5m", "15m"}
    for window in body["windows"].values():
        assert window["requests"] == 9
        assert window["status"] == {"2xx": 7, "3xx": 0, "4xx": 1, "5xx": 1, "other": 0}
        assert (window["bytes_out"], window["bytes_in"]) == (4500, 720)
        assert window["latency_ms"]["p50"] == 12.0
        assert abs(window["latency_ms"]["p99"] - 900) <= router_log.PRECISION * 900
        assert window["rps"] > 0
    assert body["processes"] == []  # no runtime configured: the router's numbers all the same


def test_an_app_the_router_never_saw_has_zeros(alice, app, data_dir):
    body = alice.get(f"/v1/apps/{app}/metrics/").json()
    assert body["windows"]["15m"]["requests"] == 0 and body["windows"]["1m"]["latency_ms"] == {"p50": None, "p99": None}


def test_the_processes_cpu_and_memory_from_the_engine(alice, app, data_dir, fake_engine):
    spec = ReleaseSpec(app=app, version=3, image="web:3", procfile={"web": "serve", "worker": "work"},
                       memory={"web": "256M"}, env={"FAKE_CPU": "12.5", "FAKE_MEMORY": str(100 << 20)})
    fake_engine.converge(Convergence(spec, {"web": 2, "worker": 1}))
    processes = alice.get(f"/v1/apps/{app}/metrics").json()["processes"]
    assert [(p["type"], p["num"], p["release"]) for p in processes] == [("web", 1, "v3"), ("web", 2, "v3"),
                                                                        ("worker", 1, "v3")]
    assert all(p["cpu_percent"] == 12.5 and p["memory_bytes"] == 100 << 20 for p in processes)
    assert [p["memory_limit_bytes"] for p in processes] == [256 << 20, 256 << 20, 512 << 20]
    assert processes[0]["name"] == f"{app}.v3.web.1"


def test_an_engine_that_fails_leaves_the_router_numbers(alice, app, routed, monkeypatch):
    class Down:
        def usage(self, app_id):
            raise SchedulerError("Docker Engine unavailable: connection refused")

    monkeypatch.setattr(metrics, "get_scheduler", lambda: Down())
    routed(line(app))
    body = alice.get(f"/v1/apps/{app}/metrics").json()
    assert body["processes"] == [] and body["windows"]["1m"]["requests"] == 1


def test_who_may_see_an_apps_metrics(alice, bob, admin_client, anon, app, data_dir):
    assert anon.get(f"/v1/apps/{app}/metrics").status_code == 401
    refused = bob.get(f"/v1/apps/{app}/metrics")
    assert refused.status_code == 403 and "ask its owner, alice" in refused.json()["detail"]
    assert bob.get(f"/v1/apps/{app}/containers").status_code == 403  # as for its processes
    assert alice.get("/v1/apps/no-such-app/metrics").status_code == 404
    assert admin_client.get(f"/v1/apps/{app}/metrics").status_code == 200
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "bob"}).status_code == 201
    assert bob.get(f"/v1/apps/{app}/metrics").status_code == 200


def test_prometheus_text_for_admins_only(alice, admin_client, anon, app, routed):
    routed(line(app), line(app), line(app, 503, ms=2000), line("-", 404, ms=0))
    answer = admin_client.get("/v1/metrics")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = answer.content.decode().splitlines()
    assert f'deis_router_requests_total{{app="{app}",status="2xx"}} 2' in lines
    assert f'deis_router_requests_total{{app="{app}",status="5xx"}} 1' in lines
    assert f'deis_router_requests_total{{app="{router_log.NO_APP}",status="4xx"}} 1' in lines
    assert f'deis_router_bytes_total{{app="{app}",direction="out"}} 1500' in lines
    assert f'deis_router_bytes_total{{app="{app}",direction="in"}} 240' in lines
    assert f'deis_router_request_duration_seconds_count{{app="{app}"}} 3' in lines
    assert f'deis_router_request_duration_seconds_bucket{{app="{app}",le="0.016"}} 2' in lines
    assert f'deis_router_request_duration_seconds_bucket{{app="{app}",le="+Inf"}} 3' in lines
    assert "# TYPE deis_router_requests_total counter" in lines
    refused = alice.get("/v1/metrics")
    assert refused.status_code == 403 and refused["Content-Type"].startswith("application/json")
    assert anon.get("/v1/metrics").status_code == 401
    assert make_user("carol").get("/v1/metrics/").status_code == 403


def test_a_destroyed_apps_metrics_are_gone(alice, app, routed, data_dir):
    routed(line(app))
    router_log.remove(data_dir, app)  # what the controller's destroy calls
    assert alice.get(f"/v1/apps/{app}/metrics").json()["windows"]["1m"]["requests"] == 0
