"""Faults under load: runs tests/e2e/test_faults.py (a platform of its own, five apps under load,
each fault injected for real) and reports, per scenario, the requests that failed and the seconds
until every app served again, beside a baseline measured in the same run: one bare `docker run -d`
of the same image until it answers HTTP.

    .venv/bin/python bench/faults.py [--write] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from bench.common import write_section  # noqa: E402
from bench.runtime import bare_one, machine  # noqa: E402
from deis.scheduler.docker import purge  # noqa: E402
from tests.scheduler.busybox_image import ensure_image  # noqa: E402

SECTION = "## Faults (bench/faults.py)"


def run_scenarios() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        env = {**os.environ, "DEIS_FAULTS_FIGURES": str(figures)}
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/e2e/test_faults.py", "-q", "-s",
                               "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"the fault tests failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
        return json.loads(figures.read_text())


def report(m: dict, figures: dict, bare: list[float]) -> str:
    base = statistics.median(bare)
    rows = ["| scenario | requests failed (of sent) | seconds until every app served again | vs. one bare container start |",
            "| --- | ---: | ---: | ---: |"]
    for scenario, (failed, total, seconds) in figures.items():
        sent = f"{failed} of {total}" if total else "(no load counted)"
        ratio = f"{seconds / base:.1f}x" if seconds else "-"
        rows.append(f"| {scenario} | {sent} | {seconds:.2f} | {ratio} |")
    return "\n".join([
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {m['commit']}: {m['nproc']} x {m['cpu']}, "
        f"{m['mem_gib']:.1f} GiB, kernel {m['kernel']}, Docker {m['docker']}, {m['router']}, "
        f"Python {m['python']}, load before {m['load']}.",
        "",
        f"Baseline: one bare `docker run -d` of the busybox test image until it answers HTTP, "
        f"median of {len(bare)}: {base:.2f} s.",
        "",
        "Load: one client per app (five apps: web=1, web=2, web=1 + worker, a web that listens 2 s "
        "after it starts, a buildpack slug), fresh connection per request, no retries. Every answer "
        "is checked for the app that served it: none came from another app. Failed requests are "
        "those sent between the fault and the recovery (plus a second) that did not get a 200.",
        "",
        *rows,
        "",
        "Reading the seconds: some scenarios wait on purpose. The `slow` app listens 2 s after it "
        "starts, so every scenario that restarts it takes at least that. The deploy cut short "
        "checks its processes after `HEALTHCHECK_INITIAL_DELAY=3`, and the reconciler resyncs every "
        "10 s, so it completes 5-15 s after the kill; the deploy that never becomes healthy is "
        "failed when its check gives up (`DEIS_DEPLOY_TIMEOUT=20`). In both the old release served "
        "every request meanwhile. The engine and host restarts are mostly dockerd's own stop and "
        "start; requests to an app whose bridge is down hang until the client's 5 s timeout.",
        "",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update the section '{SECTION[3:]}' of benchmarks.md")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--bare-runs", type=int, default=5, help="bare container starts for the baseline")
    args = parser.parse_args(argv)
    client = docker.from_env()
    image = ensure_image(client)
    namespace = f"deis-bench-{uuid.uuid4().hex[:8]}"
    m = machine(client)
    try:
        bare = [bare_one(client, image, namespace) for _ in range(args.bare_runs)]
    finally:
        purge(client, namespace)
    figures = run_scenarios()
    body = report(m, figures, bare)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "bare_s": bare, "figures": figures}, indent=1))
    if args.write:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
