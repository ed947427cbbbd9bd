"""`python -m deis.logger`: run the collector in the foreground (the platform starts it as a daemon).

The router's request lines are counted too, in a thread: per-app metrics (router_log.py)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from deis import files

from . import router_log
from .collector import Collector
from .store import LogStore


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deis.logger", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DEIS_DATA_DIR", "/var/lib/deis"))
    parser.add_argument("--namespace", default=os.environ.get("DEIS_DOCKER_NAMESPACE", "deis"))
    args = parser.parse_args(argv)
    files.private()  # the apps' logs are theirs alone
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    collector = Collector(LogStore(Path(args.data_dir) / "logs" / "apps"), namespace=args.namespace)
    receiver = router_log.Receiver(args.data_dir)
    try:
        receiver.start()
    except OSError as exc:  # the logs are kept all the same
        logging.getLogger("deis.logger").warning("no router metrics: %s", exc)

    def stop(*_):
        receiver.stop()
        collector.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    collector.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
