"""`python -m deis.controller reconcile [--once]`: converge containers and the router to the database."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from deis.controller.api import runtime

log = logging.getLogger("deis.reconciler")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit (status 1 on errors).")
        parser.add_argument("--interval", type=float, default=settings.RECONCILE_INTERVAL,
                            help="Seconds between passes.")

    def handle(self, *args, once=False, interval=10.0, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while True:
            close_old_connections()
            try:
                report = runtime.reconcile()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.exception("reconcile pass failed")
                report = {"errors": {"*": str(exc)}}
            changed = {k: v for k, v in report.items() if v}
            if changed:
                log.info("reconciled: %s", changed)
            if once:
                self.stdout.write(str(report))
                return "" if not report.get("errors") else self._fail()
            if stop.wait(interval):
                return

    def _fail(self):
        raise SystemExit(1)
