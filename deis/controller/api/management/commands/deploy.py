"""`python -m deis.controller deploy [--once] [--routes]`: the deployer. Rolls out what the API
recorded, runs one-offs, and converges containers and the router to the database.

`--routes` runs the router's reconciler (api/routing.py; `python -m deis.controller route` alone)
on a thread of the same process, as supervisord runs it: two level-triggered loops that share
nothing but the database, in one process (as Kubernetes' controller-manager runs its
controllers), which saves a Django process (~55 MB). A SIGKILL stops both; each picks up from
the database when supervisord starts the process again."""

import logging
import signal
import threading

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
        parser.add_argument("--routes", action="store_true",
                            help="Also run the router's reconciler, on a thread of this process.")

    def handle(self, *args, once=False, interval=10.0, workers=4, routes=False, **options):
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
        deployer, reconciler = Reconciler(interval, workers), None
        if routes:
            from deis.controller.api import routing

            reconciler = routing.RouteReconciler(routing.host_router())
            thread = threading.Thread(target=reconciler.run, name="routes", daemon=True)
            thread.start()

        def stop(*_):
            deployer.stop.set()
            if reconciler is not None:
                reconciler.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        deployer.run()
        if reconciler is not None:
            stop()
            thread.join(30)
