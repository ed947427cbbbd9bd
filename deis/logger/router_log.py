"""Per-app metrics from the router's request log (Django-free: the logger writes, the controller reads).

HAProxy sends one datagram a finished request (format raw, no syslog header) to the unix datagram
socket `<data_dir>/run/router-log.sock` (deis/router/router.py, LOG_FORMAT):

    deis-router app=web status=200 bytes_out=629 bytes_in=82 ms=1 method=GET path="/x" ...

`Receiver` (started by the logger, `python -m deis.logger`, in a thread) binds that socket and
keeps, per app, 10-second buckets of the last 15 minutes and cumulative totals, and about every
second writes `<data_dir>/metrics/<app>.json` of each app whose numbers changed (a temporary file
then os.replace, mode 0600). `read` turns a file into the windows of the last 1, 5 and 15 minutes
(`deis metrics`, GET /v1/apps/<app>/metrics); `prometheus` renders every app's totals in
Prometheus' text format (GET /v1/metrics). Other datagrams (HAProxy's "Server a0/... is UP") are
ignored.

What is counted
- `requests`: every request line; `status`: by class, `2xx` `3xx` `4xx` `5xx`, and `other` for
  the rest (1xx such as a WebSocket's 101, and -1/0: the client went away before an answer).
- `bytes_in` (%U: the request's bytes) and `bytes_out` (%B: the answer's bytes), as HAProxy
  counts them: headers and body, a header without its ": " and CRLF.
- Latency (%Ta, ms: the request's whole active time) in a histogram of fixed bucket bounds:
  every whole millisecond up to 13 ms, then 2^(1/8)-spaced bounds (rounded to whole ms) up to
  2^21 ms (35 minutes), beyond that one overflow bucket. A quantile is the nearest-rank
  quantile of the histogram, reported as the geometric middle of its bucket: within `PRECISION`
  (4.4 %) of the true nearest-rank value, exact below 14 ms. In the overflow bucket the quantile
  is reported as its lower bound (2097152 ms).
- Requests for a host no app has (`app=-`: the router's 404s) are counted under `NO_APP`
  (`_unrouted`, no app can have that name).
- A window of N minutes is the 6N ten-second buckets up to now, the current one partly over: it
  spans N minutes less 0 to 10 s, and `rps` is its requests over that span.

A file (version 1) holds `{"version", "app", "bucket_seconds", "since", "updated", "buckets":
[{"start", <counts>}...], "totals": <counts>}`, counts being `{"requests", "status": {class: n},
"bytes_in", "bytes_out", "latency": {"<upper bound ms>" | "inf": n}, "latency_sum_ms"}`. Totals
count from `since` (the app's first request, across restarts of the logger: a receiver carries
on from the file), so the Prometheus counters only ever grow, until `remove`.

Bursts: HAProxy never waits for its log, so what the socket cannot hold while the receiver is not
reading is lost. Its buffer is 4 MiB (SO_RCVBUFFORCE when allowed), but Linux also queues at most
net.unix.max_dgram_qlen + 1 datagrams (10 by default, 512 where systemd sets it), which the
receiver raises to 512 when it is lower and it may, and a sender's unread datagrams count against
that sender's send buffer (net.core.wmem_default: 208 KiB, some 280 request lines). The receiver
reads all the time, in a thread of its own, so a line waits there microseconds to milliseconds.

`remove(data_dir, app)` (the controller, when an app is destroyed) deletes the file and leaves a
tombstone, `metrics/.removed/<app>`: `read` shows nothing while it is there, and the receiver,
within a second, forgets the app (its buckets and totals) and deletes the tombstone, so a new app
of the same name starts from zero.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import math
import os
import re
import select
import socket
import sys
import threading
import time
from pathlib import Path

from deis import rules

log = logging.getLogger("deis.logger.router")

SOCKET = Path("run") / "router-log.sock"  # in the data directory (deis.router.Router's log_socket)
METRICS = "metrics"                        # <data_dir>/metrics/<app>.json
REMOVED = ".removed"                       # <data_dir>/metrics/.removed/<app>: tombstones
VERSION = 1
BUCKET_SECONDS = 10
KEEP_SECONDS = 15 * 60
WINDOWS = {"1m": 60, "5m": 300, "15m": 900}
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "other")
NO_APP = "_unrouted"
RCVBUF = 4 << 20     # bytes of lines that may wait in the socket (see _raise_queue_length)
DGRAM_QLEN = 512     # datagrams that may wait in it
_QLEN = Path("/proc/sys/net/unix/max_dgram_qlen")
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)
FLUSH_SECONDS = 1.0
DATAGRAM_MAX = 65536

_LINE = re.compile(r"^deis-router app=(?P<app>\S+) status=(?P<status>-?\d+|-) bytes_out=(?P<out>\d+|-) "
                   r"bytes_in=(?P<in>\d+|-) ms=(?P<ms>-?\d+|-)(?: |$)")


# --- the latency histogram ----------------------------------------------------------------------

LATENCY_BOUNDS_MS = (0,) + tuple(sorted({round(2 ** (i / 8)) for i in range(8 * 21 + 1)}))
OVERFLOW = "inf"
_BOUND_INDEX = {str(bound): index for index, bound in enumerate(LATENCY_BOUNDS_MS)}
_BOUND_INDEX[OVERFLOW] = len(LATENCY_BOUNDS_MS)


def _upper_bound(index: int) -> float:
    return LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else math.inf


def _representative(index: int) -> float:
    """The value a quantile falling into bucket `index` is reported as (see the module's doc)."""
    if index >= len(LATENCY_BOUNDS_MS):
        return float(LATENCY_BOUNDS_MS[-1])
    high = LATENCY_BOUNDS_MS[index]
    low = LATENCY_BOUNDS_MS[index - 1] + 1 if index else 0
    return float(high) if low == high else math.sqrt(low * high)


def _worst_error() -> float:
    worst = 0.0
    for index in range(1, len(LATENCY_BOUNDS_MS)):
        low, high, value = LATENCY_BOUNDS_MS[index - 1] + 1, LATENCY_BOUNDS_MS[index], _representative(index)
        worst = max(worst, value / low - 1, 1 - value / high)
    return worst


PRECISION = _worst_error()  # the largest relative error of a reported quantile (below the overflow)


def latency_bucket(ms: int) -> str:
    """The histogram key of a latency: its bucket's upper bound in ms, or "inf"."""
    if ms > LATENCY_BOUNDS_MS[-1]:
        return OVERFLOW
    return str(LATENCY_BOUNDS_MS[bisect.bisect_left(LATENCY_BOUNDS_MS, ms)])  # the first bound >= ms


def quantile(histogram: dict, q: float) -> float | None:
    """The nearest-rank `q` quantile (0 < q <= 1) of a histogram {key: count}; None when empty."""
    counts = sorted((_BOUND_INDEX[key], n) for key, n in histogram.items() if key in _BOUND_INDEX and n > 0)
    total = sum(n for _, n in counts)
    if not total:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for index, n in counts:
        seen += n
        if seen >= rank:
            return round(_representative(index), 1)
    return None  # not reached


# --- counts -------------------------------------------------------------------------------------

def empty_counts() -> dict:
    return {"requests": 0, "status": dict.fromkeys(STATUS_CLASSES, 0), "bytes_in": 0, "bytes_out": 0,
            "latency": {}, "latency_sum_ms": 0}


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 200 <= status <= 599 else "other"


def parse(line: str) -> dict | None:
    """A request line -> {"app", "status", "bytes_in", "bytes_out", "ms"} (-1 for `-`); None for
    anything else (HAProxy's own messages, junk, an app name that cannot be one)."""
    match = _LINE.match(line)
    if match is None:
        return None
    app = match["app"]
    if app == "-":
        app = NO_APP
    elif not is_app(app):
        return None

    def number(key):
        return -1 if match[key] == "-" else int(match[key])

    return {"app": app, "status": number("status"), "bytes_in": max(0, number("in")),
            "bytes_out": max(0, number("out")), "ms": number("ms")}


def _add(counts: dict, request: dict) -> None:
    counts["requests"] += 1
    key = status_class(request["status"])
    counts["status"][key] = counts["status"].get(key, 0) + 1
    counts["bytes_in"] += request["bytes_in"]
    counts["bytes_out"] += request["bytes_out"]
    if request["ms"] >= 0:  # -1: HAProxy does not know
        key = latency_bucket(request["ms"])
        counts["latency"][key] = counts["latency"].get(key, 0) + 1
        counts["latency_sum_ms"] += request["ms"]


def _merge(into: dict, counts: dict) -> None:
    for key in ("requests", "bytes_in", "bytes_out", "latency_sum_ms"):
        into[key] += int(counts.get(key) or 0)
    for table in ("status", "latency"):
        for key, n in (counts.get(table) or {}).items():
            into[table][key] = into[table].get(key, 0) + int(n)


def _valid_counts(counts) -> dict:
    """Counts read from a file, as a fresh dict; ValueError/TypeError/AttributeError when malformed."""
    clean = empty_counts()
    _merge(clean, counts)
    return clean


# --- files --------------------------------------------------------------------------------------

def is_app(name) -> bool:
    """An app's name (deis.rules), or NO_APP: what may name a file here."""
    return name == NO_APP or rules.app_name_problem(name) is None


def socket_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / SOCKET


def metrics_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / METRICS


def _name(app: str) -> str:
    if not is_app(app):
        raise ValueError(f"not an app name: {app!r}")
    return app


def metrics_file(data_dir: Path | str, app: str) -> Path:
    return metrics_dir(data_dir) / f"{_name(app)}.json"


def tombstone(data_dir: Path | str, app: str) -> Path:
    return metrics_dir(data_dir) / REMOVED / _name(app)


def write(data_dir: Path | str, app: str, state: dict) -> Path:
    """Write an app's file (the format of the module's doc) whole or not at all, mode 0600."""
    path = metrics_file(data_dir, app)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def load(data_dir: Path | str, app: str) -> dict | None:
    """An app's file, checked: {"since", "updated", "buckets": {start: counts}, "totals"}; None when
    there is none, it is not of this version, malformed, or the app was removed."""
    if tombstone(data_dir, app).exists():
        return None
    try:
        raw = json.loads(metrics_file(data_dir, app).read_text())
        if raw.get("version") != VERSION or raw.get("bucket_seconds") != BUCKET_SECONDS:
            return None
        return {"since": float(raw["since"]), "updated": float(raw.get("updated") or 0),
                "buckets": {int(b["start"]): _valid_counts(b) for b in raw.get("buckets") or []},
                "totals": _valid_counts(raw["totals"])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def remove(data_dir: Path | str, app: str) -> None:
    """The app is destroyed: its metrics go (see the module's doc: the tombstone)."""
    mark = tombstone(data_dir, app)
    mark.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(repr(time.time()))
    metrics_file(data_dir, app).unlink(missing_ok=True)


def apps(data_dir: Path | str) -> list[str]:
    """Apps with a metrics file (and no tombstone), sorted."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(metrics_dir(data_dir)):
            name = entry.name[:-5] if entry.name.endswith(".json") else ""
            if is_app(name) and not tombstone(data_dir, name).exists():
                found.append(name)
    return sorted(found)


# --- the reader ---------------------------------------------------------------------------------

def _window(buckets: dict, seconds: int, now: float) -> dict:
    """The last `seconds`: the buckets from (seconds / BUCKET_SECONDS - 1) before the current one
    to it, so a span of seconds - BUCKET_SECONDS (exclusive) to seconds; rps over that span."""
    current = int(now // BUCKET_SECONDS) * BUCKET_SECONDS
    first = current - seconds + BUCKET_SECONDS
    counts = empty_counts()
    for start, bucket in buckets.items():
        if first <= start <= current:
            _merge(counts, bucket)
    span = max(now - first, 1e-9)
    return {"requests": counts["requests"], "status": counts["status"],
            "latency_ms": {"p50": quantile(counts["latency"], 0.5), "p99": quantile(counts["latency"], 0.99)},
            "bytes_in": counts["bytes_in"], "bytes_out": counts["bytes_out"],
            "rps": round(counts["requests"] / span, 3)}


def read(data_dir: Path | str, app: str, now: float | None = None) -> dict:
    """{"app", "windows": {"1m" | "5m" | "15m": {"requests", "status": {class: n}, "latency_ms":
    {"p50", "p99"} (None without requests), "bytes_in", "bytes_out", "rps"}}}; zeros when the
    router saw no request of the app (or its file is missing or unreadable)."""
    state = load(data_dir, app) or {"buckets": {}}
    now = time.time() if now is None else now
    return {"app": app, "windows": {name: _window(state["buckets"], seconds, now) for name, seconds in WINDOWS.items()}}


# Prometheus histogram bounds: the powers of two ms, 1 ms to 65.536 s (all of them histogram bounds).
PROMETHEUS_LE_MS = tuple(2 ** k for k in range(17))


def _seconds(ms: int) -> str:
    """Whole milliseconds as seconds, exactly: 1503 -> "1.503"."""
    return f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".") or "0"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(data_dir: Path | str) -> str:
    """Every app's totals in Prometheus' text format (version 0.0.4): requests by status class,
    bytes in and out, and a latency histogram in seconds."""
    totals = {}
    for app in apps(data_dir):
        state = load(data_dir, app)
        if state is not None:
            totals[app] = state["totals"]
    lines = ["# HELP deis_router_requests_total Requests the router answered, by app and status class.",
             "# TYPE deis_router_requests_total counter"]
    for app, counts in totals.items():
        for key in STATUS_CLASSES:
            lines.append(f'deis_router_requests_total{{app="{_label(app)}",status="{key}"}} '
                         f'{counts["status"].get(key, 0)}')
    lines += ["# HELP deis_router_bytes_total Bytes through the router, by app: in (requests) and out (answers).",
              "# TYPE deis_router_bytes_total counter"]
    for app, counts in totals.items():
        for direction in ("in", "out"):
            lines.append(f'deis_router_bytes_total{{app="{_label(app)}",direction="{direction}"}} '
                         f'{counts["bytes_" + direction]}')
    lines += ["# HELP deis_router_request_duration_seconds The requests' whole time in the router, by app.",
              "# TYPE deis_router_request_duration_seconds histogram"]
    for app, counts in totals.items():
        name = _label(app)
        observed = [(_upper_bound(_BOUND_INDEX[k]), n) for k, n in counts["latency"].items() if k in _BOUND_INDEX]
        for le in PROMETHEUS_LE_MS:
            below = sum(n for bound, n in observed if bound <= le)
            lines.append(f'deis_router_request_duration_seconds_bucket{{app="{name}",le="{_seconds(le)}"}} {below}')
        count = sum(n for _, n in observed)
        lines.append(f'deis_router_request_duration_seconds_bucket{{app="{name}",le="+Inf"}} {count}')
        lines.append(f'deis_router_request_duration_seconds_sum{{app="{name}"}} {_seconds(counts["latency_sum_ms"])}')
        lines.append(f'deis_router_request_duration_seconds_count{{app="{name}"}} {count}')
    return "\n".join(lines) + "\n"


# --- the receiver -------------------------------------------------------------------------------

class _AppState:
    def __init__(self, since: float, buckets: dict | None = None, totals: dict | None = None):
        self.since = since
        self.buckets: dict[int, dict] = buckets or {}
        self.totals = totals or empty_counts()
        self.last = since  # when it last counted a request (idle apps are forgotten; the file stays)

    def add(self, request: dict, now: float) -> None:
        start = int(now // BUCKET_SECONDS) * BUCKET_SECONDS
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = empty_counts()
        _add(bucket, request)
        _add(self.totals, request)
        self.last = now

    def prune(self, now: float) -> None:
        oldest = int(now // BUCKET_SECONDS) * BUCKET_SECONDS - KEEP_SECONDS + BUCKET_SECONDS
        for start in [s for s in self.buckets if s < oldest]:
            del self.buckets[start]

    def as_json(self, app: str, now: float) -> dict:
        return {"version": VERSION, "app": app, "bucket_seconds": BUCKET_SECONDS, "since": self.since,
                "updated": now, "buckets": [{"start": s, **self.buckets[s]} for s in sorted(self.buckets)],
                "totals": self.totals}


def _raise_queue_length(wanted: int) -> int | None:
    """Linux queues at most net.unix.max_dgram_qlen (+1) datagrams in a unix datagram socket,
    whatever its buffer (10 by default; systemd makes it 512): more, sent while the receiver
    is not reading, are lost. Raise it to `wanted` when it is lower and this process may (it is
    read when a socket is made). What it is now, None when unknown."""
    try:
        current = int(_QLEN.read_text())
    except (OSError, ValueError):
        return None
    if current >= wanted:
        return current
    try:
        _QLEN.write_text(str(wanted))
    except OSError:
        log.warning("net.unix.max_dgram_qlen is %d: router lines beyond %d sent while the logger is "
                    "busy are lost (set it to %d)", current, current + 1, wanted)
        return current
    log.info("raised net.unix.max_dgram_qlen from %d to %d for the router's log socket", current, wanted)
    return wanted


def _listened_on(path: Path) -> bool:
    """Whether a live socket is bound at `path` (connecting to a stale one is refused)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class Receiver:
    """Binds the router's log socket; counts its request lines per app; writes the files.

    `start()` runs it in a thread (`stop()` ends it, writing what it counted); tests drive it
    with `receive()` and `flush()` and an injectable `clock` (epoch seconds)."""

    def __init__(self, data_dir: Path | str, *, path: Path | str | None = None, clock=time.time,
                 flush_seconds: float = FLUSH_SECONDS, rcvbuf: int = RCVBUF,
                 queue_length: int | None = DGRAM_QLEN):
        self.data_dir = Path(data_dir)
        self.path = Path(path) if path is not None else socket_path(data_dir)
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.rcvbuf = rcvbuf
        self.queue_length = queue_length  # None: leave net.unix.max_dgram_qlen alone
        self.sock: socket.socket | None = None
        self.apps: dict[str, _AppState] = {}
        self.dirty: set[str] = set()
        self.counted = 0   # request lines counted
        self.ignored = 0   # other datagrams
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inode = -1

    # -- the socket --------------------------------------------------------------------------

    def bind(self) -> "Receiver":
        """Bind the socket (a stale one, of a receiver that died, is replaced), mode 0600."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if len(os.fsencode(self.path)) > 107:
            raise OSError(f"the router's log socket path is too long for a unix socket: {self.path}")
        if self.queue_length:
            self.queue_length = _raise_queue_length(self.queue_length)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
                if option is None:
                    continue
                try:  # SO_RCVBUFFORCE passes net.core.rmem_max, for a process that may (CAP_NET_ADMIN)
                    sock.setsockopt(socket.SOL_SOCKET, option, self.rcvbuf)
                    break
                except OSError:
                    continue
            if self.path.is_socket():
                if _listened_on(self.path):
                    raise OSError(f"another receiver serves {self.path}")
                self.path.unlink(missing_ok=True)  # stale: its receiver died
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.setblocking(False)
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return self

    def receive(self, timeout: float = 0.0) -> int:
        """Wait up to `timeout` s for a datagram, then take every one waiting; how many it took."""
        if self.sock is None:
            raise RuntimeError("the receiver is not bound")
        if timeout > 0:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return 0
        taken = 0
        while True:
            try:
                datagram = self.sock.recv(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return taken
            taken += 1
            self.handle(datagram)

    def handle(self, datagram: bytes) -> bool:
        """Count one datagram; False when it is not a request line (ignored)."""
        request = parse(datagram.decode("utf-8", "replace").strip())
        if request is None:
            self.ignored += 1
            return False
        now = self.clock()
        self._state(request["app"], now).add(request, now)
        self.dirty.add(request["app"])
        self.counted += 1
        return True

    def _state(self, app: str, now: float) -> _AppState:
        state = self.apps.get(app)
        if state is None:  # first seen by this receiver: carry on from its file
            found = load(self.data_dir, app)
            state = _AppState(now) if found is None else _AppState(found["since"], found["buckets"], found["totals"])
            self.apps[app] = state
        return state

    # -- the files ---------------------------------------------------------------------------

    def forget_removed(self) -> list[str]:
        """Forget the apps `remove` marked, delete their files (again) and tombstones."""
        removed = []
        folder = metrics_dir(self.data_dir) / REMOVED
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                app = entry.name
                if not is_app(app):
                    continue
                self.apps.pop(app, None)
                self.dirty.discard(app)
                metrics_file(self.data_dir, app).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                removed.append(app)
        return sorted(removed)

    def flush(self) -> list[str]:
        """Write the file of each app whose numbers changed; forget removed and idle apps."""
        self.forget_removed()
        now = self.clock()
        written = []
        for app in sorted(self.dirty):
            state = self.apps[app]
            state.prune(now)
            try:
                write(self.data_dir, app, state.as_json(app, now))
                written.append(app)
            except OSError as exc:
                log.warning("could not write the metrics of %s: %s", app, exc)
                continue
        self.dirty.difference_update(written)
        for app in [a for a, s in self.apps.items() if a not in self.dirty and now - s.last > KEEP_SECONDS]:
            del self.apps[app]  # idle: its file holds all there is
        return written

    # -- the thread --------------------------------------------------------------------------

    def serve(self) -> None:
        """Receive and flush until stop(); every error is logged and survived."""
        self.forget_removed()
        next_flush = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            try:
                self.receive(timeout=max(0.0, min(0.2, next_flush - time.monotonic())))
                if time.monotonic() >= next_flush:
                    self.flush()
                    next_flush = time.monotonic() + self.flush_seconds
            except Exception:  # noqa: BLE001 - metrics are a courtesy: never the logger's end
                log.exception("router metrics")
                self._stop.wait(1.0)
        with contextlib.suppress(Exception):
            self.receive()
            self.flush()

    def start(self) -> "Receiver":
        if self.sock is None:
            self.bind()
        self._stop.clear()
        self._thread = threading.Thread(target=self.serve, name="router-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:  # ours, not a later receiver's
                    self.path.unlink()
