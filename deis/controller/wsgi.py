"""The controller's WSGI entry point for gunicorn."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deis.controller.settings")
application = get_wsgi_application()

# Import every view now rather than on the first request, then move the start-up objects out of
# the collector's reach: full collections over them paused workers for 40-75 ms.
get_resolver().url_patterns
gc.collect()
gc.freeze()
