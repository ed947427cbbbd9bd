"""Per-app metrics end to end: requests through a real HAProxy router, its log lines through the
router's log socket into the logger's receiver (deis/logger/router_log.py), read back exactly."""

from __future__ import annotations

import socket
import threading
import time

from deis.logger import router_log
from deis.logger.router_log import NO_APP, Receiver
from deis.router import Route


def raw_request(router, host: str, path: str) -> tuple[int, int, int]:
    """One request on a connection of its own: (status, bytes sent, bytes received, headers
    included). HAProxy's %U and %B count its own form of a message (HTX: a header without its
    ": " and CRLF), a few bytes less."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: metrics-test\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), len(request), len(answer)


class Recording(Receiver):
    """A receiver that keeps every request line it counted, as HAProxy sent it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines: list[dict] = []

    def handle(self, datagram: bytes) -> bool:
        counted = super().handle(datagram)
        if counted:
            self.lines.append(router_log.parse(datagram.decode()))
        return counted


def wait_for_requests(data_dir, app: str, count: int, timeout: float = 15.0) -> dict:
    """The app's last minute once the receiver wrote `count` requests of it (HAProxy logs a
    request once it is over, so a line may come a moment after its answer), then a moment more,
    so that a line too many would be seen too."""
    deadline = time.monotonic() + timeout
    while router_log.read(data_dir, app)["windows"]["1m"]["requests"] < count:
        assert time.monotonic() < deadline, router_log.read(data_dir, app)
        time.sleep(0.05)
    time.sleep(0.5)
    return router_log.read(data_dir, app)["windows"]


def test_what_the_router_served_is_counted_exactly(make_router, make_upstream):
    router = make_router(start=False)
    data_dir = router.root.parent
    receiver = Recording(data_dir, flush_seconds=0.1).start()
    try:
        assert str(receiver.path) == router.settings["log_socket"]  # where the router sends its lines
        router.start()
        router.apply([Route("web", ["web.localhost"], [make_upstream("a").address])])
        sent = {"web": [0, 0], NO_APP: [0, 0]}  # bytes in, bytes out

        def request(host, path, app, expected):
            status, bytes_in, bytes_out = raw_request(router, host, path)
            assert status == expected, (host, path, status)
            sent[app][0] += bytes_in
            sent[app][1] += bytes_out

        for n in range(37):
            request("web.localhost", f"/page/{n}", "web", 200)
        for _ in range(5):
            request("web.localhost", "/status/404", "web", 404)
        for _ in range(3):
            request("nobody.localhost", "/", NO_APP, 404)

        web = wait_for_requests(data_dir, "web", 42)
        unrouted = wait_for_requests(data_dir, NO_APP, 3)["1m"]
        lines = receiver.lines
        for window in ("1m", "5m", "15m"):
            assert web[window]["requests"] == 42
            assert web[window]["status"] == {"2xx": 37, "3xx": 0, "4xx": 5, "5xx": 0, "other": 0}
        logged = {app: [sum(r[k] for r in lines if r["app"] == app) for k in ("bytes_in", "bytes_out")] for app in sent}
        for window in ("1m", "15m"):
            assert [web[window]["bytes_in"], web[window]["bytes_out"]] == logged["web"]
        # What HAProxy counts is what went through, give or take the separators of the headers.
        assert 0.8 * sent["web"][0] < logged["web"][0] <= sent["web"][0]
        assert 0.8 * sent["web"][1] < logged["web"][1] <= sent["web"][1]
        assert web["1m"]["latency_ms"]["p50"] is not None and web["1m"]["latency_ms"]["p99"] < 5000
        assert web["1m"]["rps"] > 0

        assert unrouted["requests"] == 3 and unrouted["status"]["4xx"] == 3
        assert [unrouted["bytes_in"], unrouted["bytes_out"]] == logged[NO_APP] and logged[NO_APP][1] > 0
        assert receiver.counted == len(lines) == 45  # HAProxy's own messages (servers UP...) are not requests

        text = router_log.prometheus(data_dir)
        assert 'deis_router_requests_total{app="web",status="2xx"} 37' in text
        assert 'deis_router_request_duration_seconds_count{app="web"} 42' in text
    finally:
        receiver.stop()


def test_concurrent_requests_are_all_counted(make_router, make_upstream):
    router = make_router(start=False)
    receiver = Receiver(router.root.parent, flush_seconds=0.1).start()
    try:
        router.start()
        router.apply([Route("busy", ["busy.localhost"], [make_upstream("a").address, make_upstream("b").address])])
        statuses = []

        def client(n):
            for i in range(15):
                statuses.append(raw_request(router, "busy.localhost", "/status/503" if (n + i) % 10 == 0 else "/")[0])

        threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(statuses) == 300
        window = wait_for_requests(router.root.parent, "busy", 300)["1m"]
        assert window["requests"] == 300
        assert window["status"]["2xx"] == statuses.count(200) == 270 and window["status"]["5xx"] == 30
    finally:
        receiver.stop()
