"""Every followed container's log stream on one thread: the engine's logs API (`follow=1`) over
its unix socket, read with a selector.

Why not the docker SDK: its streams block, so each needs a thread of its own, and a thread with a
requests response per container cost the logger ~70 KB per app process (35 MB at 500 apps);
here a stream is a socket and a few buffers. The SDK still does everything else (inspections,
events, listings). The protocol is small: one GET, an HTTP/1.1 answer in chunked encoding, and
in it the engine's multiplexed frames (8-byte header: stream, 3 zero bytes, big-endian length) -
or the raw bytes for a container with a TTY. Written here: the SDK has no non-blocking client.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlencode

log = logging.getLogger("deis.logger")
READ = 65536


class StreamEnded(Exception):
    """A stream the engine refused (its status) or cut in the middle of its answer."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class _Answer:
    """What has arrived of one logs answer: its head, then chunks, then frames."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.head = bytearray()
        self.status = 0
        self.chunked = False
        self.body = bytearray()  # chunked encoding not decoded yet
        self.frames = bytearray()  # decoded, frames not complete yet
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads `data` completes (what the container wrote, in order)."""
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 65536:
                    raise StreamEnded("an answer head of over 64 KB")
                return []
            lines = bytes(self.head[:end]).decode("latin-1").split("\r\n")
            data = bytes(self.head[end + 4:])
            self.head = bytearray()
            try:
                self.status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                raise StreamEnded(f"not an HTTP answer: {lines[0][:80]!r}") from None
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if self.status != 200:
                raise StreamEnded(f"the engine answered {lines[0][9:]}", self.status)
        return self._frames(self._dechunk(data) if self.chunked else data)

    def _dechunk(self, data: bytes) -> bytes:
        self.body += data
        out = bytearray()
        while not self.done:
            eol = self.body.find(b"\r\n")
            if eol < 0:
                break
            try:
                size = int(bytes(self.body[:eol]).split(b";")[0], 16)
            except ValueError:
                raise StreamEnded("a bad chunk size") from None
            if size == 0:
                self.done = True
                break
            if len(self.body) < eol + 2 + size + 2:
                break
            out += self.body[eol + 2:eol + 2 + size]
            del self.body[:eol + 2 + size + 2]
        return bytes(out)

    def _frames(self, data: bytes) -> list[bytes]:
        if self.tty:
            return [data] if data else []
        self.frames += data
        out = []
        while len(self.frames) >= 8:
            size = int.from_bytes(self.frames[4:8], "big")
            if len(self.frames) < 8 + size:
                break
            out.append(bytes(self.frames[8:8 + size]))
            del self.frames[:8 + size]
        return out


class _Stream:
    def __init__(self, key: str, sock: socket.socket, answer: _Answer, on_data, on_end):
        self.key, self.sock, self.answer, self.on_data, self.on_end = key, sock, answer, on_data, on_end


class LogStreams:
    """Follows log streams until each ends; `on_data(bytes)` for what arrives, `on_end(error or
    None)` once, when the container's stream is over (it stopped, or the engine went away)."""

    def __init__(self, socket_path: str, api_version: str):
        self.socket_path, self.api_version = socket_path, api_version
        self._selector = selectors.DefaultSelector()
        self._guard = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._added: list[_Stream] = []
        self._stop = threading.Event()

    def __len__(self) -> int:
        with self._guard:
            return len(self._streams) + len(self._added)

    def follow(self, container_id: str, on_data: Callable[[bytes], None], on_end: Callable[[Exception | None], None],
               since: float | None = None, tty: bool = False) -> None:
        """Open the stream of `container_id` (its output from `since`, epoch seconds, on)."""
        query = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1}
        if since:
            query["since"] = f"{since:.9f}"
        request = (f"GET /v{self.api_version}/containers/{container_id}/logs?{urlencode(query)} HTTP/1.1\r\n"
                   "Host: docker\r\nUser-Agent: deis-logger\r\n\r\n").encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(10)
            sock.connect(self.socket_path)
            sock.sendall(request)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        with self._guard:
            self._added.append(_Stream(container_id, sock, _Answer(tty), on_data, on_end))
        self._wake_w.send(b"x")

    def run(self) -> None:
        """Read every stream until stop()."""
        while not self._stop.is_set():
            with self._guard:
                added, self._added = self._added, []
                for stream in added:
                    self._streams[stream.key] = stream
            for stream in added:
                self._selector.register(stream.sock, selectors.EVENT_READ, stream)
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    continue
                self._read(key.data)
        for stream in list(self._streams.values()):
            self._end(stream, None)

    def _read(self, stream: _Stream) -> None:
        try:
            data = stream.sock.recv(READ)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(stream, exc)
            return
        if not data:
            self._end(stream, None if stream.answer.done or stream.answer.status == 200
                      else StreamEnded("the engine closed the stream"))
            return
        try:
            for payload in stream.answer.feed(data):
                stream.on_data(payload)
        except StreamEnded as exc:
            self._end(stream, exc)
            return
        except Exception as exc:  # noqa: BLE001 - one container's trouble must not stop the others
            log.exception("handling the output of %s failed", stream.key[:12])
            self._end(stream, exc)
            return
        if stream.answer.done:
            self._end(stream, None)

    def _end(self, stream: _Stream, error: Exception | None) -> None:
        with self._guard:
            if self._streams.get(stream.key) is not stream:
                return
            del self._streams[stream.key]
        try:
            self._selector.unregister(stream.sock)
        except (KeyError, ValueError):
            pass
        stream.sock.close()
        try:
            stream.on_end(error)
        except Exception:  # noqa: BLE001
            log.exception("ending the stream of %s failed", stream.key[:12])

    def stop(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
