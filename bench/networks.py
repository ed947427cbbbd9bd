#!/usr/bin/env python3
"""Does the engine slow with its containers or with its networks? (Why the apps share one network.)

    .venv/bin/python bench/networks.py --containers 500 --layout one    # N containers, one network
    .venv/bin/python bench/networks.py --containers 500 --layout each   # N containers, N networks

No platform runs. Baseline and figure come from the same run: one bare `docker run -d` of the
busybox test image on the default bridge until it answers HTTP (bench.runtime.bare_one), median of
5, before the N containers are made and with them running. The containers are the density
benchmark's: busybox httpd, `--init`, a 64 MB memory and 64 processes limit; with `one`, all on
one bridge network with a /22 of its own, with `each`, each on a bridge network of its own (as the
platform placed apps until session 9). Everything made is removed at the end (labelled
`deis-bench-networks=1`); removing 500 networks takes the engine about 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import docker.types  # noqa: E402

from bench.runtime import BARE_CMD, bare_one  # noqa: E402
from tests.scheduler.busybox_image import ensure_image  # noqa: E402

LABEL = {"deis-bench-networks": "1"}
RUNS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--layout", choices=["one", "each"], required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    image = ensure_image(client)
    namespace = "deis-bench-networks"

    def runs() -> list[float]:
        return [bare_one(client, image, namespace) for _ in range(RUNS)]

    result = {"layout": args.layout, "containers": args.containers, "before": runs()}
    shared = None
    if args.layout == "one":
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.250.0.0/22")])
        shared = client.networks.create("deis-bench-networks-one", driver="bridge", labels=LABEL, ipam=ipam)

    def make(n: int):
        network = shared or client.networks.create(f"deis-bench-networks-{n}", driver="bridge", labels=LABEL)
        client.containers.run(image, BARE_CMD, detach=True, init=True, network=network.name,
                              name=f"deis-bench-networks-{n}", environment={"PORT": "8080"}, labels=LABEL,
                              mem_limit="64m", pids_limit=64)

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(make, range(args.containers)))
        result["made_s"] = time.monotonic() - started
        result["after"] = runs()
    finally:
        for container in client.containers.list(all=True, filters={"label": "deis-bench-networks=1"}):
            container.remove(force=True)
        for network in client.networks.list(filters={"label": "deis-bench-networks=1"}):
            network.remove()
    before, after = statistics.median(result["before"]), statistics.median(result["after"])
    print(f"{args.containers} containers, layout {args.layout}: docker run until it answers "
          f"{before:.3f} s -> {after:.3f} s ({after / before:.2f}x); made in {result['made_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
