"""The logger's log streams (deis/logger/streams.py): the answer's parsing, byte by byte, and
real containers followed through the engine's socket, alone and by the Collector."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from deis.logger.streams import LogStreams, StreamEnded, _Answer


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def _chunked(*parts: bytes) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_frames_in_chunks_arrive_whole_however_the_bytes_are_cut(step):
    body = _chunked(_frame(1, b"one\n") + _frame(2, b"tw"), _frame(1, b"o\nthree"), _frame(1, b"\n"))
    answer, payloads = _Answer(tty=False), []
    data = HEAD + body
    for at in range(0, len(data), step):
        payloads += answer.feed(data[at:at + step])
    assert b"".join(payloads) == b"one\ntwo\nthree\n"
    assert payloads[0] == b"one\n" and answer.done


def test_a_tty_stream_is_taken_raw():
    answer = _Answer(tty=True)
    assert answer.feed(HEAD + _chunked(b"raw text\n")) == [b"raw text\n"] and answer.done


def test_a_refusal_names_its_status():
    answer = _Answer(tty=False)
    with pytest.raises(StreamEnded) as refused:
        answer.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
    assert refused.value.status == 404


def test_a_bad_chunk_size_ends_the_stream():
    with pytest.raises(StreamEnded):
        _Answer(tty=False).feed(HEAD + b"zz\r\n")


@pytest.fixture(scope="module")
def engine():
    import docker

    client = docker.from_env()
    client.ping()
    from tests.scheduler.busybox_image import ensure_image

    return client, ensure_image(client)


def test_real_containers_are_followed_on_one_thread_until_they_exit(engine):
    client, image = engine
    adapter = client.api.get_adapter(client.api.base_url)
    streams = LogStreams(adapter.socket_path, client.api.api_version)
    threading.Thread(target=streams.run, daemon=True).start()
    made, received, ended = [], {}, {}
    try:
        for n in range(3):
            container = client.containers.run(
                image, ["/bin/sh", "-c", f"echo first {n}; sleep 0.5; echo second {n} >&2; sleep 0.5"],
                detach=True, labels={"deis-test-streams": "1"})
            made.append(container)
            received[container.id] = bytearray()
            streams.follow(container.id, received[container.id].extend,
                           lambda error, key=container.id: ended.setdefault(key, error))
        deadline = time.monotonic() + 30
        while len(ended) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ended == {c.id: None for c in made}
        for n, container in enumerate(made):
            lines = bytes(received[container.id]).decode().splitlines()
            assert [line.split(" ", 1)[1] for line in lines] == [f"first {n}", f"second {n}"]
            assert all(line[:4].isdigit() and "T" in line.split(" ", 1)[0] for line in lines)  # timestamps
        assert len(streams) == 0
    finally:
        streams.stop()
        for container in made:
            container.remove(force=True)


def test_a_stream_of_a_container_that_is_gone_ends_at_once(engine):
    client, _ = engine
    adapter = client.api.get_adapter(client.api.base_url)
    streams = LogStreams(adapter.socket_path, client.api.api_version)
    threading.Thread(target=streams.run, daemon=True).start()
    ended = []
    try:
        streams.follow("0" * 64, lambda data: None, ended.append)
        deadline = time.monotonic() + 10
        while not ended and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ended) == 1 and isinstance(ended[0], StreamEnded) and ended[0].status == 404
    finally:
        streams.stop()


def test_the_collector_keeps_every_line_of_its_apps_containers_and_a_crash(engine, tmp_path):
    """Through the Collector: the lines of a process of the namespace land in the app's log, in
    order, and its crash becomes a platform line; a restarted collector repeats none of them."""
    from deis.logger import LogStore
    from deis.logger.collector import Collector

    client, image = engine
    namespace = f"deis-test-{uuid.uuid4().hex[:8]}"
    labels = {f"{namespace}.managed": "1", f"{namespace}.app": "streamed", f"{namespace}.type": "web",
              f"{namespace}.num": "1", f"{namespace}.release": "v2"}
    store = LogStore(tmp_path / "apps")
    collector = Collector(store, namespace=namespace, positions=tmp_path / "positions.json")
    threading.Thread(target=collector.run, daemon=True).start()
    container = None
    try:
        time.sleep(0.5)  # the collector follows the engine's events now
        script = "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; exit 3"
        container = client.containers.run(image, ["/bin/sh", "-c", script], detach=True, labels=labels)
        # The crash line comes with the engine's event, the output through the stream: both done
        # (the stream ended, and so the container is no longer followed).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                any("crashed" in line for line in store.tail("streamed", 300))
                and container.id not in collector.following and container.id in collector.positions):
            time.sleep(0.1)
        lines = store.tail("streamed", 300)
        kept = [line.rsplit(": ", 1)[1] for line in lines if "web.1" in line and ": line " in line]
        assert kept == [f"line {i}" for i in range(200)]
        assert any("crashed: exited with code 3" in line for line in lines)
    finally:
        collector.stop()
        if container is not None:
            container.remove(force=True)
    again = Collector(store, namespace=namespace, positions=tmp_path / "positions.json")
    again.follow_all()  # the container is gone: nothing to repeat
    assert len([line for line in store.tail("streamed", 500) if ": line " in line]) == 200
