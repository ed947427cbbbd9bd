"""Nudges between the platform's processes on one host: datagrams of a few bytes on a unix socket
in the data directory (mode 0600). Best effort: every receiver also polls the database."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable


def send(path: str, message: str) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(message.encode(), path)
    except OSError:
        pass


def receive(path: str, stop: threading.Event, handle: Callable[[str], None]) -> socket.socket:
    """Bind `path` (a stale socket of a dead receiver is replaced) and call `handle` with each
    message until `stop` is set or the socket is closed; returns the socket once bound, the loop
    runs on in a thread of its own."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.settimeout(1.0)

    def loop():
        while not stop.is_set():
            try:
                message = sock.recv(256).decode("utf-8", "replace")
            except socket.timeout:
                continue
            except OSError:
                return
            if message:
                handle(message)

    threading.Thread(target=loop, name="nudges", daemon=True).start()
    return sock
