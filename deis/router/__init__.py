"""The router: HAProxy in front of the apps' containers, configured from plain route data.

    from deis.router import Router, Route, Certificate
    router = Router(data_dir, http_port=80, https_port=443)
    router.start()
    result = router.apply([Route("web", ["web.localhost"], [("172.17.0.5", 5000)])])
    result.rejected   # {app: why} for apps left at their last good route or out

See deis/router/router.py for the files it keeps and how a new configuration goes live.
"""

from .model import Certificate, InvalidRoute, Route, validate
from .router import ApplyResult, Router, RouterError, find_haproxy

__all__ = ["ApplyResult", "Certificate", "InvalidRoute", "Route", "Router", "RouterError", "find_haproxy",
           "validate"]
