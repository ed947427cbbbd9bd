"""What the bench scripts share: wrk runs read back as JSON, number formatting, and writing one
script's section of docs/benchmarks.md without touching the others."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"

# Appended to every wrk script: one line of JSON on stdout with the figures the reports use.
WRK_DONE_LUA = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def run_wrk(command: list[str], duration: float) -> tuple[dict, str]:
    """Run wrk (its script ending in WRK_DONE_LUA); return its figures plus rps, and its stderr."""
    answer = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in answer.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if answer.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({answer.returncode}): {answer.stdout}\n{answer.stderr}")
    raw = json.loads(line[len("BENCH_JSON "):])
    raw["rps"] = raw["requests"] / raw["duration_s"]
    return raw, answer.stderr


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def write_section(section: str, body: str, doc: Path = DOC) -> None:
    """Replace the `section` heading's part of the document (or append it), keeping the others."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{section}\n\n{body}"
    start = text.find(section + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        nxt = re.search(r"^## ", text[start + len(section):], flags=re.M)
        end = start + len(section) + nxt.start() if nxt else len(text)
        text = text[:start] + block + ("\n" if nxt else "") + text[end:]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def platform_parser(description: str, section: str) -> argparse.ArgumentParser:
    """The options every platform bench has: --write, the platform's timings, --json."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--write", action="store_true", help=f"update the section '{section[3:]}' of {DOC.name}")
    parser.add_argument("--settle", type=float, default=1.0, help="DEIS_SETTLE (default 1)")
    parser.add_argument("--grace", type=float, default=2.0, help="DEIS_STOP_GRACE (default 2)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    return parser
