"""Real nginx on free ports in front of real upstream servers, all on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deis.router import Router, find_haproxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers with JSON about the request: which upstream, path, headers, body digest.

    /sleep/N waits N seconds first; /eof answers without Content-Length and closes (body ends at EOF);
    /status/N answers with status N.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self):
        body = self._read_body()
        if self.path.startswith("/sleep/"):
            time.sleep(float(self.path.split("/")[2]))
        info = {
            "upstream": self.server.name,
            "path": self.path,
            "method": self.command,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        payload = json.dumps(info).encode()
        self.server.hits.append(self.path)
        if self.path == "/eof":
            self.close_connection = True
            self.send_response_only(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            return
        self.send_response(int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-ID", "upstream-must-not-leak")
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer


class _LocalServer:
    """A server on 127.0.0.1 serving from a daemon thread, with the address a route names."""

    def serve_in_background(self):
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server_address[1])

    def close(self):
        self.shutdown()
        self.server_close()


class Upstream(_LocalServer, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str):
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.name = name
        self.hits: list[str] = []
        self.serve_in_background()


class _UpgradeHandler(socketserver.BaseRequestHandler):
    """A WebSocket-style upstream: answers the handshake with 101, then echoes every byte back."""

    def handle(self):
        sock = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        self.server.requests.append(head.decode(errors="replace"))
        # RFC 6455's answer to the key (HAProxy checks it, as browsers do).
        key = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")), b"")
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if rest:
            sock.sendall(rest)
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return
            sock.sendall(chunk)


class UpgradeUpstream(_LocalServer, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _UpgradeHandler)
        self.requests: list[str] = []
        self.serve_in_background()


@pytest.fixture(scope="session")
def haproxy_binary():
    """HAProxy is part of the platform (scripts/haproxy.sh installs it): its absence fails, never skips."""
    return find_haproxy(install=True)


@pytest.fixture
def make_upstream():
    made = []

    def make(name: str) -> Upstream:
        up = Upstream(name)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


@pytest.fixture
def upgrade_upstream():
    up = UpgradeUpstream()
    yield up
    up.close()


@pytest.fixture
def make_router(tmp_path, haproxy_binary):
    """Routers on free ports of 127.0.0.1, each in its own data dir; all stopped at the end."""
    made: list[Router] = []

    def make(start: bool = True, **settings) -> Router:
        settings.setdefault("listen_address", "127.0.0.1")
        settings.setdefault("worker_processes", 2)
        https_port = settings.pop("https_port", "free")
        router = Router(tmp_path / f"data{len(made)}", http_port=free_port(),
                        https_port=free_port() if https_port == "free" else https_port,
                        haproxy=haproxy_binary, **settings)
        made.append(router)
        if start:
            router.start()
        return router

    yield make
    for router in made:
        router.stop()
        assert not router.running()


@pytest.fixture
def router(make_router) -> Router:
    return make_router()


def get(router: Router, host: str, path: str = "/", headers: dict | None = None, method: str = "GET",
        body=None, timeout: float = 10.0, encode_chunked: bool = False) -> tuple[int, dict, bytes]:
    """A request through the router's HTTP port on a fresh connection: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", router.http_port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})},
                     encode_chunked=encode_chunked)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(router: Router, host: str, path: str = "/", **kw) -> dict:
    status, _, body = get(router, host, path, **kw)
    assert status == 200, (status, body)
    return json.loads(body)


def https_get(router: Router, sni: str, ca_pem: str | None, path: str = "/",
              host: str | None = None) -> tuple[int, dict, bytes, dict]:
    """A request through the router's HTTPS port with SNI `sni`: (status, headers, body, peer cert)."""
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    raw = socket.create_connection(("127.0.0.1", router.https_port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        peer = tls.getpeercert()
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or sni}\r\nConnection: close\r\n\r\n".encode())
        resp = http.client.HTTPResponse(tls)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(), peer
