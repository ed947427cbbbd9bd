"""The API's Django app: at start-up, DRF's compatibility module is imported without the optional
packages it would load for features this API does not use.

`rest_framework.compat` imports, when they are installed, django.contrib.postgres's fields (and
with them psycopg and libpq, even on SQLite), requests (for DRF's RequestsClient, a test helper)
and pygments (the browsable API's highlighting). The docker SDK installs requests and psycopg is
installed for PostgreSQL, so they are there: about 18 MB of every API worker and deployer. DRF
takes each one as absent (None) when its import fails; later imports of them work as usual."""

from __future__ import annotations

import importlib
import sys

from django.apps import AppConfig

OPTIONAL_UNUSED = ("django.contrib.postgres.fields", "requests", "pygments")


def import_without(module: str, absent: tuple[str, ...]) -> None:
    """Import `module` while the modules `absent` (those not loaded yet) fail to import."""
    blocked = [name for name in absent if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # the import system's "not importable" mark
    try:
        importlib.import_module(module)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class ApiConfig(AppConfig):
    name = "deis.controller.api"
    label = "api"

    def ready(self) -> None:
        import_without("rest_framework.compat", OPTIONAL_UNUSED)
