"""Health probes the Docker backend runs from the host against container addresses.

Plain sockets and http.client on purpose: no proxy settings of the environment apply, and nothing
follows redirects (a 3xx answer is healthy: the app is up and deciding where to send people).
"""

from __future__ import annotations

import http.client
import math
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_path(url: str) -> str:
    """The request target of HEALTHCHECK_URL: a path (`/health`) or a full URL whose path is used."""
    url = (url or "").strip()
    if "://" in url:
        parts = urlsplit(url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return url if url.startswith("/") else "/" + url


def http_check(host: str, port: int, url: str, timeout: float = 5.0, any_status: bool = False) -> tuple[bool, str]:
    """GET `url` at host:port and read the whole answer (the body up to 64 KiB) within `timeout`;
    healthy on 2xx/3xx, or on any status with `any_status`. Returns (healthy, what happened)."""
    path = check_path(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "deis-healthcheck", "Connection": "close"})
        response = conn.getresponse()
        response.read(65536)
        status = response.status
    except socket.timeout:
        return False, f"accepted a connection on port {port} but did not answer GET {path} within {timeout:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"health check GET {path} on port {port} failed: {exc or type(exc).__name__}"
    finally:
        conn.close()
    ok = any_status or 200 <= status < 400
    return ok, f"health check GET {path} answered {status} {response.reason}".rstrip()


# Bounds of the HEALTHCHECK_* config values: what the API accepts (400 outside) and what the engine
# clamps older configs to.
BOUNDS = {"HEALTHCHECK_TIMEOUT": (0.1, 60.0), "HEALTHCHECK_INITIAL_DELAY": (0.0, 300.0)}
URL_LIMIT = 2048


def config_problem(key: str, value) -> str | None:
    """Why a HEALTHCHECK_* config value cannot be used, or None (other keys: always None)."""
    if value is None:
        return None
    if key in BOUNDS:
        low, high = BOUNDS[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number) or not low <= number <= high:
            return f"{key} must be a number of seconds from {low:g} to {high:g}, not '{value}'."
        return None
    if key == "HEALTHCHECK_URL":
        text = str(value).strip()
        if len(text) > URL_LIMIT or any(c.isspace() or ord(c) < 32 for c in text) or \
                not (text.startswith("/") or text.startswith(("http://", "https://"))):
            return (f"HEALTHCHECK_URL must be a path of the app, like /health (or a URL whose path is "
                    f"used), of at most {URL_LIMIT} characters without spaces.")
    return None


@dataclass(frozen=True)
class Check:
    """The health check of an app's web processes: an HTTP GET on PORT that must be answered in
    full within `timeout` s - any status, or 2xx/3xx when HEALTHCHECK_URL names a path. TCP alone
    is not enough: a server whose master listens while its workers died accepts and never answers."""

    url: str = ""
    timeout: float = 5.0
    initial_delay: float = 0.0

    @classmethod
    def from_env(cls, env: dict, default_timeout: float = 5.0) -> "Check":
        """From an app's config; values outside BOUNDS (older configs) fall back to the default
        or are clamped."""

        def number(key, default):
            low, high = BOUNDS[key]
            try:
                value = float(env.get(key, default))
            except (TypeError, ValueError):
                return default
            return min(high, max(low, value)) if math.isfinite(value) else default

        url = (env.get("HEALTHCHECK_URL") or "").strip()
        if config_problem("HEALTHCHECK_URL", url) if url else None:
            url = ""
        return cls(url, number("HEALTHCHECK_TIMEOUT", default_timeout), number("HEALTHCHECK_INITIAL_DELAY", 0.0))

    def probe(self, host: str, port: int) -> tuple[bool, str]:
        if not tcp_open(host, port, timeout=min(1.0, self.timeout)):
            return False, f"did not accept connections on port {port}"
        return http_check(host, port, self.url or "/", timeout=self.timeout, any_status=not self.url)

    def describe(self, port: int) -> str:
        """The check in a line for the person deploying, with how to change it."""
        if self.url:
            return (f"GET {check_path(self.url)} on port {port} must answer 2xx or 3xx within "
                    f"{self.timeout:g} s (HEALTHCHECK_URL)")
        return (f"GET / on port {port} must answer within {self.timeout:g} s, any status; set "
                "HEALTHCHECK_URL=/health to require a 2xx/3xx from a path")
