"""HAProxy's runtime API over its admin socket: the router's way to change routes without a reload.

One command per connection (HAProxy answers and closes), so an answer is always that command's.
Commands that succeed print nothing or a known line; anything else is the command's error.
"""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path


class RuntimeAPIError(RuntimeError):
    """HAProxy refused a runtime command, or its socket does not answer."""


# What a successful command prints when it prints anything at all (HAProxy 2.6).
_OK = ("New server registered.", "Server deleted.", "Success!", "New version created:",
       "Transaction created", "Committing", "Inserting certificate", "Entry deleted",
       "New empty certificate store", "Deleting certificate", "Committed version",
       "Transaction aborted")


class RuntimeAPI:
    def __init__(self, path: Path | str, timeout: float = 10.0):
        self.path = str(path)
        self.timeout = timeout

    def raw(self, command: str, payload: str | None = None) -> str:
        """The answer to one command; `payload` is sent as its `<<` multi-line argument."""
        if "\n" in command or ";" in command:
            raise RuntimeAPIError(f"refusing a command with a newline or ';': {command!r}")
        line = command + (" <<\n" + payload.strip("\n") + "\n\n" if payload is not None else "\n")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout)
                conn.connect(self.path)
                conn.sendall(line.encode())
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise RuntimeAPIError(f"HAProxy's admin socket {self.path} does not answer: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def do(self, command: str, payload: str | None = None) -> str:
        """Run a command that changes something; RuntimeAPIError with HAProxy's words if it fails."""
        answer = self.raw(command, payload).strip()
        if answer and not any(line.startswith(_OK) for line in answer.splitlines()):
            raise RuntimeAPIError(f"{command.split(' <<')[0]}: {answer[:500]}")
        return answer

    def env(self, name: str) -> str | None:
        """A variable of the running worker's environment (the config sets DEIS_ROUTER_CONFIG)."""
        try:
            answer = self.raw(f"show env {name}").strip()
        except RuntimeAPIError:
            return None
        return answer.split("=", 1)[1] if answer.startswith(f"{name}=") else None

    def servers(self, backend: str) -> dict[str, dict]:
        """The backend's servers: name -> {addr, port, op_state, admin_state}."""
        return self._servers(self.raw(f"show servers state {backend}")).get(backend, {})

    def all_servers(self) -> dict[str, dict[str, dict]]:
        """Every backend's servers, in one listing: backend -> name -> {...}."""
        return self._servers(self.raw("show servers state"))

    @staticmethod
    def _servers(answer: str) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for line in answer.splitlines():
            fields = line.split()
            if len(fields) < 19 or line.startswith("#"):
                continue
            out.setdefault(fields[1], {})[fields[3]] = {
                "addr": fields[4], "op_state": int(fields[5]), "admin_state": int(fields[6]), "port": int(fields[18])}
        return out

    def stats(self, backend: str | None = None) -> list[dict]:
        """`show stat` as rows of dicts (frontends, backends and servers; or one backend's servers)."""
        text = self.raw(f"show stat {backend} 4 -1" if backend else "show stat").lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def crt_list(self, path: str) -> list[str]:
        """The certificate files a crt-list names now."""
        answer = self.raw(f"show ssl crt-list {path}")
        return [line.split()[0] for line in answer.splitlines() if line.strip() and not line.startswith("#")]
