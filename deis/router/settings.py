"""The router's settings, read from the environment in this one place (the deployer's Router and
supervisord's router program must agree on them)."""

from __future__ import annotations

import os


def from_environment(environ=None) -> dict:
    """Router keyword arguments from DEIS_ROUTER_PORT (80), DEIS_ROUTER_HTTPS_PORT (443; 0: no
    HTTPS), DEIS_ROUTER_DRAIN_TIMEOUT (seconds old processes may finish their requests in, 10),
    DEIS_ROUTER_TRUSTED_PROXIES (comma-separated networks whose X-Forwarded-For names the client)
    and DEIS_HAPROXY (the binary; found on PATH when unset)."""
    environ = os.environ if environ is None else environ
    https = environ.get("DEIS_ROUTER_HTTPS_PORT", "443")
    return {"http_port": int(environ.get("DEIS_ROUTER_PORT") or 80),
            "https_port": int(https) if https not in ("", "0") else None,
            "drain_timeout": float(environ.get("DEIS_ROUTER_DRAIN_TIMEOUT") or 10),
            "trusted_proxies": [p.strip() for p in environ.get("DEIS_ROUTER_TRUSTED_PROXIES", "").split(",") if p.strip()],
            "haproxy": environ.get("DEIS_HAPROXY") or None}
