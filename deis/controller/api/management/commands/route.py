"""`python -m deis.controller route`: the router's reconciler. Serves the routes the database
holds (api/routing.py) on this host's router, and writes back what it serves."""

import logging
import signal

from django.core.management.base import BaseCommand

from deis.controller.api import routing


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--resync", type=float, default=routing.RESYNC,
                            help="Seconds between passes over every app.")

    def handle(self, *args, resync=routing.RESYNC, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                            force=True)
        reconciler = routing.RouteReconciler(routing.host_router(), resync=resync)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: reconciler.stop.set())
        reconciler.run()
