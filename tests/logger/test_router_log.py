"""The router's request lines through a real unix datagram socket into the metrics receiver."""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import time

import pytest

from deis.logger import router_log
from deis.logger.router_log import NO_APP, PRECISION, Receiver

T0 = 1_800_000_000.0  # a bucket boundary (divisible by 10)


class Clock:
    def __init__(self, now: float = T0 + 3):
        self.now = now

    def __call__(self) -> float:
        return self.now


def line(app="web", status=200, out=629, into=82, ms=1, path="/x") -> bytes:
    return (f'deis-router app={app} status={status} bytes_out={out} bytes_in={into} ms={ms} method=GET '
            f'path="{path}" client=127.0.0.1 server=p_127_0_0_1_40233 rid=d331d6d9d315496ca8512058c2c89117').encode()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def receiver(data_dir, clock):
    made = Receiver(data_dir, clock=clock).bind()
    yield made
    made.close()


@pytest.fixture
def send(receiver):
    """Send datagrams to the receiver's socket as HAProxy does (a socket of its own, sendto). A
    sender's unread datagrams are bounded (its send buffer): past 100, the receiver takes them."""
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(*datagrams: bytes) -> None:
        for n, datagram in enumerate(datagrams, 1):
            sender.sendto(datagram, str(receiver.path))
            if n % 100 == 0:
                receiver.receive()

    yield send
    sender.close()


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def close_to(estimate, true):
    return abs(estimate - true) <= PRECISION * true + 1e-9


def test_counts_by_status_class_and_bytes_exactly(receiver, send, data_dir):
    statuses = [200] * 7 + [204] * 3 + [301, 302] + [404] * 4 + [502, 503, 503] + [-1, 0, 101]
    send(*(line(status=s, out=100 + i, into=10 + i) for i, s in enumerate(statuses)))
    send(line(app="other", status=500, out=5, into=6))
    assert receiver.receive() == len(statuses) + 1
    assert receiver.flush() == ["other", "web"]

    one = router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]
    assert one["requests"] == len(statuses)
    assert one["status"] == {"2xx": 10, "3xx": 2, "4xx": 4, "5xx": 3, "other": 3}
    assert one["bytes_out"] == sum(100 + i for i in range(len(statuses)))
    assert one["bytes_in"] == sum(10 + i for i in range(len(statuses)))
    other = router_log.read(data_dir, "other", now=T0 + 5)["windows"]["15m"]
    assert (other["requests"], other["status"]["5xx"], other["bytes_out"], other["bytes_in"]) == (1, 1, 5, 6)


def test_junk_and_haproxys_own_messages_are_ignored(receiver, send, data_dir):
    send(b"Server a0/p_127_0_0_1_40233 is UP, reason: Layer4 check passed, check duration: 0ms.",
         b"Proxy deis started.", b"", b"\xff\xfe\x00garbage", b"deis-router", b"deis-router app=web",
         b"deis-router app=web status=abc bytes_out=1 bytes_in=1 ms=1 method=GET",
         line(app="Bad_Name"), line(app="../../etc"), line(app="x" * 80),
         b"xdeis-router app=web status=200 bytes_out=1 bytes_in=1 ms=1 method=GET",
         line(status=200), line(status=200) + b"\n")
    assert receiver.receive() == 13
    assert (receiver.counted, receiver.ignored) == (2, 11)
    receiver.flush()
    assert router_log.apps(data_dir) == ["web"]
    assert router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]["requests"] == 2


def test_unknown_hosts_are_counted_apart(receiver, send, data_dir):
    send(line(app="-", status=404, out=160), line(app="-", status=404, out=160), line(status=200))
    receiver.receive()
    receiver.flush()
    assert router_log.read(data_dir, NO_APP, now=T0 + 5)["windows"]["1m"]["status"]["4xx"] == 2
    assert router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]["requests"] == 1


def test_latency_quantiles_within_the_histograms_precision(receiver, send, data_dir):
    latencies = [1, 2, 3, 5, 8, 13] * 30 + list(range(20, 5000, 37)) + [12345, 60000, 250000]
    send(*(line(ms=ms) for ms in latencies))
    send(line(ms=-1))  # HAProxy does not know: a request, not a latency
    receiver.receive()
    receiver.flush()
    window = router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]
    assert window["requests"] == len(latencies) + 1
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        assert close_to(window["latency_ms"][name], nearest_rank(latencies, q)), (name, window)
    assert window["latency_ms"]["p50"] == nearest_rank(latencies, 0.5)  # 13: exact below 14 ms


def test_quantiles_and_buckets():
    assert 0.04 < PRECISION < 0.045
    for ms in list(range(0, 2000)) + [10**4, 123457, 10**6, 2097152]:
        estimate = router_log.quantile({router_log.latency_bucket(ms): 1}, 0.5)
        assert estimate == ms if ms <= 13 else close_to(estimate, ms), ms
    assert router_log.latency_bucket(2097153) == "inf"
    assert router_log.quantile({"inf": 3}, 0.99) == 2097152.0  # the overflow's lower bound
    assert router_log.quantile({}, 0.5) is None
    histogram = {"1": 98, router_log.latency_bucket(100): 1, router_log.latency_bucket(1000): 1}
    assert router_log.quantile(histogram, 0.5) == 1.0
    assert close_to(router_log.quantile(histogram, 0.99), 100) and close_to(router_log.quantile(histogram, 1.0), 1000)
    assert router_log.quantile({"not-a-bound": 5}, 0.5) is None  # what no receiver writes is left out


def test_windows_of_1_5_and_15_minutes(receiver, send, data_dir, clock):
    now = T0 + 20 * 60 + 4
    # (seconds before now, how many): inside 1m, inside 5m only, inside 15m only, older than 15m.
    for before, count in ((3, 4), (40, 2), (4 * 60, 3), (10 * 60, 5), (15 * 60 + 30, 7)):
        clock.now = now - before
        send(*(line() for _ in range(count)))
        receiver.receive()
    clock.now = now
    receiver.flush()
    windows = router_log.read(data_dir, "web", now=now)["windows"]
    assert [windows[w]["requests"] for w in ("1m", "5m", "15m")] == [6, 9, 14]
    # The 1m window is the 6 ten-second buckets to now: 54 s here.
    assert windows["1m"]["rps"] == round(6 / 54, 3) and windows["15m"]["rps"] == round(14 / 894, 3)
    later = router_log.read(data_dir, "web", now=now + 16 * 60)["windows"]
    assert all(later[w]["requests"] == 0 and later[w]["latency_ms"] == {"p50": None, "p99": None} for w in later)
    stored = json.loads(router_log.metrics_file(data_dir, "web").read_text())
    assert stored["totals"]["requests"] == 21  # cumulative: the buckets past 15 minutes are gone, not the totals
    assert min(b["start"] for b in stored["buckets"]) > now - 15 * 60 - 10


def test_an_app_never_seen_reads_as_zeros(data_dir):
    answer = router_log.read(data_dir, "nobody", now=T0)
    assert answer["app"] == "nobody" and set(answer["windows"]) == {"1m", "5m", "15m"}
    assert answer["windows"]["5m"] == {"requests": 0, "status": {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "other": 0},
                                       "latency_ms": {"p50": None, "p99": None}, "bytes_in": 0, "bytes_out": 0,
                                       "rps": 0.0}
    with pytest.raises(ValueError):
        router_log.read(data_dir, "../x")


def test_files_are_written_atomically_and_private(receiver, send, data_dir, monkeypatch):
    send(line())
    receiver.receive()
    receiver.flush()
    path = router_log.metrics_file(data_dir, "web")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    before, inode = path.read_text(), path.stat().st_ino
    assert receiver.flush() == []  # nothing changed: not written again
    assert path.stat().st_ino == inode

    def failing_replace(src, dst):
        raise OSError("disk full")

    send(line(), line())
    receiver.receive()
    monkeypatch.setattr(router_log.os, "replace", failing_replace)
    assert receiver.flush() == []  # logged, and tried again at the next flush
    assert path.read_text() == before and sorted(os.listdir(path.parent)) == ["web.json"]
    monkeypatch.undo()
    assert receiver.flush() == ["web"]
    assert path.stat().st_ino != inode  # a new file took its place whole
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and sorted(os.listdir(path.parent)) == ["web.json"]
    assert router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]["requests"] == 3


def test_the_socket_is_private_replaces_a_stale_one_and_is_never_stolen(data_dir, clock):
    path = router_log.socket_path(data_dir)
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # a receiver that died: its socket file stays
    first = Receiver(data_dir, clock=clock).bind()
    try:
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= router_log.RCVBUF
        with pytest.raises(OSError, match="another receiver"):
            Receiver(data_dir, clock=clock).bind()
    finally:
        first.close()
    assert not path.exists()


def test_a_burst_waits_in_the_socket(receiver, data_dir):
    if receiver.queue_length is None or receiver.queue_length < router_log.DGRAM_QLEN:
        pytest.skip("net.unix.max_dgram_qlen cannot be raised here")
    senders = [socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(4)]  # HAProxy threads
    sent = 0
    try:
        for sender in senders:
            sender.setblocking(False)  # as HAProxy: it never waits for its log
            for _ in range(100):
                sender.sendto(line(), str(receiver.path))  # BlockingIOError: lost
                sent += 1
    finally:
        for sender in senders:
            sender.close()
    assert receiver.receive() == sent == 400
    assert receiver.counted == 400


def test_remove_forgets_the_app_and_a_new_app_of_the_name_starts_from_zero(receiver, send, data_dir):
    send(line(), line(), line(app="kept"))
    receiver.receive()
    receiver.flush()
    router_log.remove(data_dir, "web")
    assert not router_log.metrics_file(data_dir, "web").exists()
    assert router_log.read(data_dir, "web", now=T0 + 5)["windows"]["1m"]["requests"] == 0
    assert router_log.apps(data_dir) == ["kept"] and 'app="web"' not in router_log.prometheus(data_dir)
    # A line of the destroyed app's last moments, counted before the receiver saw the tombstone:
    send(line())
    receiver.receive()
    receiver.flush()
    assert not router_log.metrics_file(data_dir, "web").exists()
    assert not router_log.tombstone(data_dir, "web").exists()  # the receiver is done with it
    send(line())
    receiver.receive()
    receiver.flush()
    stored = json.loads(router_log.metrics_file(data_dir, "web").read_text())
    assert stored["totals"]["requests"] == 1
    assert router_log.read(data_dir, "kept", now=T0 + 5)["windows"]["1m"]["requests"] == 1
    router_log.remove(data_dir, "never-seen")  # nothing to remove: no error
    with pytest.raises(ValueError):
        router_log.remove(data_dir, "../../etc")


def test_a_new_receiver_carries_on_from_the_files(receiver, send, data_dir, clock):
    send(line(), line(status=500))
    receiver.receive()
    receiver.flush()
    receiver.close()
    since = json.loads(router_log.metrics_file(data_dir, "web").read_text())["since"]
    clock.now += 30
    again = Receiver(data_dir, clock=clock).bind()
    try:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.sendto(line(), str(again.path))
        sender.close()
        again.receive()
        again.flush()
    finally:
        again.close()
    stored = json.loads(router_log.metrics_file(data_dir, "web").read_text())
    assert stored["since"] == since and stored["totals"]["requests"] == 3
    assert router_log.read(data_dir, "web", now=clock.now)["windows"]["1m"]["requests"] == 3


def test_prometheus_text(receiver, send, data_dir):
    send(line(status=200, ms=3, out=10, into=1), line(status=200, ms=1500, out=20, into=2),
         line(status=404, ms=0, out=30, into=3), line(app="-", status=404, ms=0, out=5, into=4))
    receiver.receive()
    receiver.flush()
    text = router_log.prometheus(data_dir)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert 'deis_router_requests_total{app="web",status="2xx"} 2' in lines
    assert 'deis_router_requests_total{app="web",status="4xx"} 1' in lines
    assert 'deis_router_requests_total{app="web",status="5xx"} 0' in lines
    assert f'deis_router_requests_total{{app="{NO_APP}",status="4xx"}} 1' in lines
    assert 'deis_router_bytes_total{app="web",direction="in"} 6' in lines
    assert 'deis_router_bytes_total{app="web",direction="out"} 60' in lines
    assert 'deis_router_request_duration_seconds_bucket{app="web",le="0.001"} 1' in lines
    assert 'deis_router_request_duration_seconds_bucket{app="web",le="0.004"} 2' in lines
    assert 'deis_router_request_duration_seconds_bucket{app="web",le="1.024"} 2' in lines
    assert 'deis_router_request_duration_seconds_bucket{app="web",le="2.048"} 3' in lines
    assert 'deis_router_request_duration_seconds_bucket{app="web",le="+Inf"} 3' in lines
    assert 'deis_router_request_duration_seconds_sum{app="web"} 1.503' in lines
    assert 'deis_router_request_duration_seconds_count{app="web"} 3' in lines
    for family, kind in (("requests_total", "counter"), ("bytes_total", "counter"),
                         ("request_duration_seconds", "histogram")):
        assert f"# TYPE deis_router_{family} {kind}" in lines
    assert all(line.startswith(("#", "deis_router_")) for line in lines)
    assert router_log._seconds(123456789) == "123456.789"  # sums stay exact however large


def test_the_thread_writes_every_second_and_at_its_stop(data_dir):
    running = Receiver(data_dir, flush_seconds=0.1).start()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for _ in range(5):
            sender.sendto(line(), str(running.path))
        deadline = time.monotonic() + 5
        while router_log.read(data_dir, "web")["windows"]["1m"]["requests"] < 5:
            assert time.monotonic() < deadline, "never written"
            time.sleep(0.02)
        sender.sendto(line(status=503), str(running.path))
    finally:
        running.stop()
        sender.close()
    assert router_log.read(data_dir, "web")["windows"]["1m"]["status"]["5xx"] == 1  # written at the stop
    assert not router_log.socket_path(data_dir).exists()
