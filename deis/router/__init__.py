"""The router: HAProxy in front of the apps' containers, configured from plain route data.

    from deis.router import Router, Route, Certificate
    router = Router(data_dir, http_port=80, https_port=443)
    router.start()
    result = router.apply([Route("web", ["web.localhost"], [("172.17.0.5", 5000)])])
    result.rejected   # {app: why} for apps left at their last good route or out

See deis/router/router.py for the files it keeps and how a new configuration goes live.

The names are imported when first used (PEP 562): a process that only builds Routes (the API's
workers) never loads the HAProxy driver and its templates (jinja2).
"""

from __future__ import annotations

import importlib

_WHERE = {"Certificate": "model", "InvalidRoute": "model", "Route": "model", "validate": "model",
          "ApplyResult": "router", "Router": "router", "RouterError": "model", "find_haproxy": "router"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
