"""`deis metrics` against a live controller, with router lines the logger's receiver counted."""

import json
import socket

from deis.logger import router_log


def routed(live, tmp_path, app, *statuses):
    """Requests of `app` as the router logs them, through the receiver into the controller's data dir."""
    receiver = router_log.Receiver(live.controller.data_dir, path=tmp_path / "router-log.sock").bind()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for n, status in enumerate(statuses):
            sender.sendto((f"deis-router app={app} status={status} bytes_out=2048 bytes_in=100 ms={5 + n} "
                           f'method=GET path="/" client=127.0.0.1 server=p_1 rid=r{n}').encode(), str(receiver.path))
        receiver.receive()
        receiver.flush()
    finally:
        sender.close()
        receiver.close()


def test_metrics_table_and_json(deis, user, app, live, tmp_path):
    routed(live, tmp_path, app, 200, 200, 200, 301, 404, 500)
    out = deis.ok("metrics", "-a", app).out
    lines = out.splitlines()
    assert lines[0] == f"=== {app} Requests"
    assert lines[1].split()[:11] == ["Window", "Requests", "2xx", "3xx", "4xx", "5xx", "p50", "p99", "Req/s", "In",
                                     "Out"]
    for window, row in zip(("1m", "5m", "15m"), lines[2:5]):
        assert row.split()[:6] == [window, "6", "3", "1", "1", "1"]
        assert "7 ms" in row and "10 ms" in row and "600 B" in row and "12.0 KiB" in row
    assert f"=== {app} Processes" in out and "No processes running" in out  # no runtime on this controller
    answer = json.loads(deis.ok("metrics:list", "--app", app, "--json").out)
    assert answer["app"] == app and answer["windows"]["5m"]["status"]["5xx"] == 1 and answer["processes"] == []
    assert "metrics:list" in deis.ok("metrics", "--help").out


def test_metrics_of_an_app_without_traffic_and_of_someone_elses(deis, user, app, live):
    out = deis.ok("metrics", "-a", app).out
    assert out.splitlines()[2].split()[:8] == ["1m", "0", "0", "0", "0", "0", "-", "-"]
    assert "No app named 'nosuch-app'" in deis.fails("metrics", "-a", "nosuch-app").err
