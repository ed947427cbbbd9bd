"""Health probes the Docker backend runs from the host against container addresses.

Plain sockets and http.client on purpose: no proxy settings of the environment apply, and nothing
follows redirects (a 3xx answer is healthy: the app is up and deciding where to send people).
"""

from __future__ import annotations

import http.client
import socket
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


def http_check(host: str, port: int, url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """GET `url` at host:port; healthy on 2xx/3xx. Returns (healthy, what happened)."""
    path = check_path(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "deis-healthcheck", "Connection": "close"})
        response = conn.getresponse()
        response.read(65536)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"health check GET {path} failed: {exc or type(exc).__name__}"
    finally:
        conn.close()
    ok = 200 <= status < 400
    return ok, f"health check GET {path} answered {status} {response.reason}".rstrip()


def settings_from_env(env: dict, default_timeout: float = 5.0) -> tuple[str, float, float]:
    """(HEALTHCHECK_URL, HEALTHCHECK_TIMEOUT, HEALTHCHECK_INITIAL_DELAY) from an app's config,
    with bad numbers falling back to the defaults."""

    def number(key, default):
        try:
            value = float(env.get(key, default))
            return value if value >= 0 else default
        except (TypeError, ValueError):
            return default

    return (env.get("HEALTHCHECK_URL") or "").strip(), number("HEALTHCHECK_TIMEOUT", default_timeout) or default_timeout, \
        number("HEALTHCHECK_INITIAL_DELAY", 0.0)
