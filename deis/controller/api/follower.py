"""The deployer's loop (the reconciler grown up): the API's recorded changes, the engine's events
and a periodic resync feed a work queue of apps, and workers converge each app with
`runtime.reconcile_app` (the Kubernetes controller shape); one-offs run beside them (jobs.JobRunner).

Where work comes from: the database is the durable queue (rollouts not yet observed, jobs pending),
read every DB_POLL s; the API also nudges the deployer through a datagram socket in the data
directory so a change starts within milliseconds (a lost nudge costs at most DB_POLL).

Why events: routes must follow a process that dies or starts within a second, and a process that
was killed (`docker kill`, which Docker's restart policy treats as a manual stop) must be started
again at once; a poll every few seconds left apps unrouted or down meanwhile. Why the resync
anyway: events are lost while the engine restarts, and a rollout cut short by a dead controller
makes no event at all.

The queue holds each app at most once; an app is worked on by one worker at a time, and an app
queued again while it is being worked on is looked at once more afterwards (level-triggered: a
worker reads the whole state, never the event). An app whose deploy holds its lock is looked at
again shortly (the deploy routes it itself), one whose web processes still boot every 0.1 s
doubling to 0.5 s, one that failed with backoff up to 30 s.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time

from django import db
from django.conf import settings

from deis.scheduler import LockBusy, SchedulerError, get_scheduler

from . import jobs, nudges, rollouts, runtime

log = logging.getLogger("deis.reconciler")

BOOT_RECHECK = (0.1, 0.5)  # first and longest wait before looking again at an app still booting: a
# replacement is routed within half a second of listening; a look is one listing and a TCP connect
BUSY_RECHECK = 0.5
FAILURE_BACKOFF = (1.0, 30.0)
EVENTS_RECONNECT = (0.2, 1.0)  # a refused connect to the engine costs nothing: look often
DB_POLL = 0.5
# An app in which nothing changed is still looked at once in SWEEP_EVERY resyncs (5 minutes by
# default): a slice of them in every resync. It was every app at once in one resync of 30, which
# at 500 apps made every rollout of the next 15 s twice as slow (docs/benchmarks.md, density run l).
SWEEP_EVERY = 30


class WorkQueue:
    """App names due at a time; each app once, never handed to two workers at once.

    Two classes: `urgent` (a change the API recorded: a user waits for it) goes before every
    other due app (resyncs, engine events, rechecks), so a tenant's deploy never queues behind a
    resync of every other tenant's apps."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heaps: tuple[list, list] = ([], [])  # [urgent, background] of (due, order, app)
        self._due: dict[str, tuple[float, int]] = {}  # app -> (due, rank): its live entry
        self._active: set[str] = set()
        self._again: dict[str, tuple[float, int]] = {}  # queued while active: after the worker is done
        self._order = itertools.count()
        self.closed = False

    def add(self, app: str, delay: float = 0.0, urgent: bool = False) -> None:
        due, rank = time.monotonic() + delay, 0 if urgent else 1
        with self._cond:
            if app in self._active:
                before = self._again.get(app, (due, rank))
                self._again[app] = (min(due, before[0]), min(rank, before[1]))
                return
            existing = self._due.get(app)
            if existing is not None:
                if existing[0] <= due and existing[1] <= rank:
                    return
                due, rank = min(due, existing[0]), min(rank, existing[1])
            self._due[app] = (due, rank)
            heapq.heappush(self._heaps[rank], (due, next(self._order), app))
            self._cond.notify()

    def _head(self, rank: int) -> tuple[float, int, str] | None:
        heap = self._heaps[rank]
        while heap and self._due.get(heap[0][2]) != (heap[0][0], rank):
            heapq.heappop(heap)  # superseded by an earlier due time or an urgent entry
        return heap[0] if heap else None

    def get(self, timeout: float = 1.0) -> str | None:
        """The next app that is due (urgent ones first), marked active; None after `timeout` s or
        when closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.closed:
                now = time.monotonic()
                heads = [self._head(0), self._head(1)]
                for rank, head in enumerate(heads):
                    if head is not None and head[0] <= now:
                        heapq.heappop(self._heaps[rank])
                        app = head[2]
                        del self._due[app]
                        self._active.add(app)
                        return app
                wait = deadline - now
                for head in heads:
                    if head is not None:
                        wait = min(wait, head[0] - now)
                if wait <= 0 and now >= deadline:
                    return None
                self._cond.wait(max(0.001, wait))
            return None

    def done(self, app: str) -> None:
        with self._cond:
            self._active.discard(app)
            again = self._again.pop(app, None)
        if again is not None:
            self.add(app, max(0.0, again[0] - time.monotonic()), urgent=again[1] == 0)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)


class Reconciler:
    """`python -m deis.controller deploy`: recorded changes, events and resyncs in, converged apps
    and finished one-offs out."""

    def __init__(self, interval: float, workers: int = runtime.RECONCILE_WORKERS, run_jobs: bool = True):
        self.interval = interval
        self.workers = workers
        self.owner = rollouts.worker_id()
        self.queue = WorkQueue()
        self.stop = threading.Event()
        self.jobs = jobs.JobRunner(self.owner) if run_jobs else None
        self._boots: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._resyncs = 0
        self._marks: dict[str, tuple] = {}  # each app's marks at the previous resync (see resync)
        self._unsettled: set[str] = set()  # apps whose last look failed, was busy or found them booting
        self._stream = None
        self._wake = None

    # -- the database and the API's nudges --------------------------------------------------------

    def poll_database(self) -> None:
        """Rollouts not yet observed and queued jobs: what the API recorded, whatever was missed."""
        while not self.stop.is_set():
            try:
                for app in rollouts.due_apps():
                    self.queue.add(app, urgent=True)
                if self.jobs is not None:
                    self.jobs.poll()
            except Exception:  # noqa: BLE001 - a database hiccup: the next poll tries again
                log.exception("polling the database failed")
            finally:
                db.connection.close()
            self.stop.wait(DB_POLL)

    def nudged(self, name: str) -> None:
        """The API's nudges: an app name to converge now, or `job:<uuid>` to start one-offs."""
        if name.startswith("job:"):
            if self.jobs is not None:
                try:
                    self.jobs.poll()
                except Exception:  # noqa: BLE001 - the database poll starts it
                    log.exception("starting jobs failed")
                finally:
                    db.connection.close()
        else:
            self.queue.add(name, urgent=True)

    # -- producers --------------------------------------------------------------------------------

    def resync(self, full: bool = False) -> None:
        """Every app the database or the engine knows, and the router started if it is down.

        An app in which nothing changed since the previous resync (the engine's fingerprint of
        its processes, what the database wants, its route) and whose last look went well is left
        alone: at 500 apps, a look at each one every interval kept the deployer busy and slowed
        every rollout. Each resync also looks at one SWEEP_EVERY-th of the apps, in turn; the
        first (and `full`) looks at every app."""
        try:
            routed = runtime.router()
            if not routed.running():
                routed.start()
            apps = runtime.apps_to_reconcile(routed)
            self._resyncs += 1
            full = full or self._resyncs == 1
            prints = get_scheduler().fingerprints()
            if prints is not None:
                wanted, routes = runtime.desired_marks(), routed.routes()
                marks = {app: (prints.get(app), wanted.get(app), routes.get(app)) for app in apps}
                if not full:
                    swept = set(sorted(apps)[self._resyncs % SWEEP_EVERY::SWEEP_EVERY]) if SWEEP_EVERY else set()
                    apps = [app for app in apps
                            if app in swept or app in self._unsettled or self._marks.get(app) != marks[app]]
                self._marks = marks
            else:
                self._marks = {}
        except SchedulerError as exc:  # the engine restarts: its events will resync when it is back
            log.warning("resync failed: %s", exc)
            return
        except Exception:  # noqa: BLE001 - the next resync tries again
            log.exception("resync failed")
            return
        finally:
            db.connection.close()
        # Spread over up to half the interval (10 ms an app): a host of 500 apps is not listed all
        # at once every interval, which would slow whatever rollout runs meanwhile.
        apps = list(apps)
        spread = min(self.interval / 2, 0.01 * len(apps))
        for i, app in enumerate(apps):
            self.queue.add(app, delay=spread * i / max(1, len(apps)))

    def follow_events(self) -> None:
        """Queue each app the engine reports on; reconnect (and resync) when the stream ends."""
        wait = EVENTS_RECONNECT[0]
        while not self.stop.is_set():
            try:
                self._stream = get_scheduler().events()
                self.resync(full=True)  # whatever happened while no stream was open
                wait = EVENTS_RECONNECT[0]
                for app in self._stream:
                    self.queue.add(app)
                    if self.stop.is_set():
                        break
            except Exception as exc:  # noqa: BLE001 - the engine restarts; follow it again
                if not self.stop.is_set():
                    log.warning("engine events stopped (%s); following again in %.1f s", exc, wait)
            self.stop.wait(wait)
            wait = min(EVENTS_RECONNECT[1], wait * 2)

    # -- workers ----------------------------------------------------------------------------------

    def work(self) -> None:
        while not self.stop.is_set():
            app = self.queue.get(timeout=1.0)
            if app is None:
                continue
            try:
                again = self.sync(app)
            finally:
                db.connection.close()
                self.queue.done(app)
            if again is not None:
                self.queue.add(app, again)

    def sync(self, app: str) -> float | None:
        """Converge one app; the seconds after which to look at it again, or None."""
        self._unsettled.add(app)
        try:
            report = runtime.reconcile_app(app, blocking=False, owner=self.owner)
        except LockBusy:
            return BUSY_RECHECK
        except Exception as exc:  # noqa: BLE001 - SchedulerError, RouterError, a database hiccup
            failures = self._failures[app] = self._failures.get(app, 0) + 1
            level = logging.WARNING if isinstance(exc, SchedulerError) else logging.ERROR
            log.log(level, "%s: %s", app, exc, exc_info=not isinstance(exc, SchedulerError))
            try:
                rollouts.back_off(app, str(exc), FAILURE_BACKOFF[1])
            except Exception:  # noqa: BLE001 - the database is what failed
                pass
            return min(FAILURE_BACKOFF[1], FAILURE_BACKOFF[0] * 2 ** (failures - 1))
        self._failures.pop(app, None)
        changed = {k: v for k, v in report.items() if v and k != "booting"}
        if changed:
            log.info("%s: %s", app, changed)
        if report["booting"]:
            boots = self._boots[app] = self._boots.get(app, 0) + 1
            return min(BOOT_RECHECK[1], BOOT_RECHECK[0] * 2 ** (boots - 1))
        self._boots.pop(app, None)
        self._unsettled.discard(app)
        return None

    # -- the whole ----------------------------------------------------------------------------------

    def run(self) -> None:
        log.info("following the engine's events; a resync every %g s, %d workers", self.interval, self.workers)
        taken = rollouts.take_over_from_predecessors(self.owner)
        orphans = self.jobs.orphans() if self.jobs is not None else 0
        db.connection.close()
        if taken or orphans:
            log.info("took over %d rollouts and ended %d one-offs of a deployer that died", taken, orphans)
        self._wake = nudges.receive(str(settings.DATA_DIR / rollouts.WAKE_SOCKET), self.stop, self.nudged)
        threads = [threading.Thread(target=self.follow_events, name="events", daemon=True),
                   threading.Thread(target=self.poll_database, name="database", daemon=True)]
        threads += [threading.Thread(target=self.work, name=f"worker-{n}", daemon=True) for n in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            while not self.stop.wait(self.interval):
                self.resync()
        finally:
            self.queue.close()
            if self.jobs is not None:
                self.jobs.close()
            if self._wake is not None:
                self._wake.close()
            if self._stream is not None:
                try:
                    self._stream.close()
                except Exception:  # noqa: BLE001 - closing a broken stream
                    pass
            for thread in threads:
                thread.join(timeout=5)
