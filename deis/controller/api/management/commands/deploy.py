"""`python -m deis.controller deploy [--once]`: the deployer. Rolls out what the API recorded,
runs one-offs, and converges containers and the router to the database."""

import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from deis.controller.api import runtime
from deis.controller.api.follower import Reconciler


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit (status 1 on errors).")
        parser.add_argument("--interval", type=float, default=settings.RECONCILE_INTERVAL,
                            help="Seconds between resyncs of every app (events are followed meanwhile).")
        parser.add_argument("--workers", type=int, default=settings.DEPLOY_WORKERS,
                            help="Apps rolled out at once (DEIS_DEPLOY_WORKERS).")

    def handle(self, *args, once=False, interval=10.0, workers=4, **options):
        # force: Django's LOGGING gave the root logger a handler without timestamps at WARNING,
        # which hid our lines and left tracebacks undated.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                            force=True)
        if once:
            report = runtime.reconcile(workers)
            self.stdout.write(str(report))
            if report.get("errors"):
                raise SystemExit(1)
            return
        deployer = Reconciler(interval, workers)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: deployer.stop.set())
        deployer.run()
