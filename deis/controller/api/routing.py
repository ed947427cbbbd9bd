"""Routes through the database: what the router should serve, and the router's reconciler.

The deployer and the API never touch the router. They write what it should serve into the
database (models/route.py: an app's upstreams, and a bumped generation when its hosts,
certificates or settings change) and nudge the router's reconciler through a datagram socket.
The reconciler (a thread of the deployer's process, `deploy --routes`, or alone as
`python -m deis.controller route`; the one owner of the Router) serves each changed app at once
and every app every RESYNC seconds - level-triggered, so a restarted router or HAProxy is put
right with nobody asking - and writes back the generation it
serves (or why it refused it). `DesiredRoutes.update` returns once the router serves the change:
the deployer stops old processes only then.

One writer thread applies changes in the order it reads them, so an older snapshot of the
database never undoes a newer one; the drains of servers no longer routed to (seconds, when
requests are in flight) finish on threads of their own, and a row is marked served only after.
"""

from __future__ import annotations

import logging
import threading
import time

from django import db
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from deis.router import ApplyResult, Route, Router, RouterError
from deis.scheduler import Endpoint

from . import nudges
from .models import App, AppRoute

log = logging.getLogger("deis.routes")
WAKE_SOCKET = "run/routes.sock"
POLL = 0.5  # seconds between the reconciler's looks at the database (besides the nudges)
RESYNC = 10.0  # seconds between passes over every app
CONFIRM_POLL = 0.02  # seconds between a waiting writer's looks at what the router served


def wake(what: str) -> None:
    """Nudge the router's reconciler: an app's name, or `*` for every app (best effort)."""
    nudges.send(str(settings.DATA_DIR / WAKE_SOCKET), what)


class DesiredRoutes:
    """What runtime.router() gives the deployer and the API when a router reconciler runs
    (DEIS_ROUTER_RECONCILER=1): the Router's interface, over the database."""

    def __init__(self, confirm_timeout: float):
        self.confirm_timeout = confirm_timeout

    def running(self) -> bool:
        return True  # the reconciler's supervisor keeps it (and it the router) running

    def start(self) -> None:
        return None

    def routes(self) -> dict[str, Route]:
        """The apps that have a route, with their upstreams (hosts are the router's to work out)."""
        return {row.app_id: Route(app=row.app_id, hosts=[], upstreams=[tuple(u) for u in row.upstreams],
                                  backups=[tuple(b) for b in row.backups]) for row in AppRoute.objects.all()}

    def update(self, changes: dict[str, Route | None], only_if_changed: bool = False,
               keep_upstreams: bool = False, remove_others: bool = False) -> ApplyResult | None:
        """Record `changes` (upstreams; with keep_upstreams: hosts, certificates or settings
        changed) and wait until the router serves them (a removal: until the row is gone)."""
        result = ApplyResult()
        touched: list[str] = []
        removed = False
        bump = {"generation": F("generation") + 1}
        if remove_others:
            others = list(AppRoute.objects.exclude(app_id__in=list(changes)).values_list("app_id", flat=True))
            AppRoute.objects.filter(app_id__in=others).update(**bump)
            touched += others
            removed = bool(others)
        for app_id, route in changes.items():
            if route is None or keep_upstreams:
                # A removal (the reconciler deletes the row once the route is gone), or hosts,
                # certificates or settings changed: the reconciler works them out.
                AppRoute.objects.get_or_create(app_id=app_id)
                AppRoute.objects.filter(pk=app_id).update(**bump)
                touched.append(app_id)
                removed = removed or route is None
                continue
            upstreams = [[a, int(p)] for a, p in route.upstreams]
            backups = [[a, int(p)] for a, p in route.backups]
            row = AppRoute.objects.filter(pk=app_id).first()
            if row is None:
                AppRoute.objects.get_or_create(app_id=app_id, defaults={"upstreams": upstreams, "backups": backups})
            elif only_if_changed and row.upstreams == upstreams and row.backups == backups \
                    and row.served >= row.generation:
                continue
            else:
                AppRoute.objects.filter(pk=app_id).update(upstreams=upstreams, backups=backups, **bump)
            touched.append(app_id)
        if not touched:
            return None if only_if_changed else result
        wake("*" if removed or len(touched) > 1 else touched[0])
        self._await(dict(AppRoute.objects.filter(app_id__in=touched).values_list("app_id", "generation")), result)
        return result

    def _await(self, wanted: dict[str, int], result: ApplyResult) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        pending = dict(wanted)
        while pending:
            rows = {app: (served, problem) for app, served, problem in
                    AppRoute.objects.filter(app_id__in=pending).values_list("app_id", "served", "problem")}
            for app in list(pending):
                served, problem = rows.get(app, (pending[app], ""))  # gone: nothing left to serve
                if served >= pending[app]:
                    del pending[app]
                    if problem:
                        result.rejected[app] = problem
            if not pending:
                break
            if time.monotonic() > deadline:
                result.unconfirmed = True
                result.warnings.append(f"the router did not confirm the route of {', '.join(sorted(pending))} "
                                       f"within {self.confirm_timeout:.0f} s (is its reconciler running?)")
                break
            time.sleep(CONFIRM_POLL)
        result.applied = sorted(a for a in wanted if a not in result.rejected and a not in pending)


def host_router() -> Router:
    """This host's Router, with the settings deis.router.settings reads (the reconciler's)."""
    from deis.router import settings as router_settings

    return Router(settings.DATA_DIR, install=False, **router_settings.from_environment())


def desired_or_host_router():
    """runtime.router(): the database's routes when a router reconciler serves them
    (DEIS_ROUTER_RECONCILER=1, as `deis-platform up` runs it), else this host's Router itself
    (tools and tests that run no reconciler)."""
    from deis.router import settings as router_settings

    if settings.ROUTER_RECONCILER:
        return DesiredRoutes(confirm_timeout=router_settings.from_environment()["drain_timeout"] + 20)
    return host_router()


def _endpoints(app_id: str, pairs) -> list[Endpoint]:
    return [Endpoint(app=app_id, type="web", num=0, address=str(a), port=int(p)) for a, p in pairs]


class RouteReconciler:
    """The router's reconciler: see the module's docstring."""

    def __init__(self, router: Router, resync: float = RESYNC, spawn=None):
        self.router = router
        # How drains are waited for: on a thread of their own, with its own database connection
        # (tests pass one that runs at once).
        self.spawn = spawn or self._on_a_thread
        self.resync = resync
        self.stop = threading.Event()
        self._lock = threading.Condition()
        self._pending: set[str] = set()
        self._full = True  # the first pass covers every app
        self._sock = None
        self.passes = 0
        # Apps with servers still draining: never marked served meanwhile (by a later pass that
        # finds nothing to change), or the deployer would stop processes with requests in flight.
        self._draining: dict[str, int] = {}

    # -- producers --------------------------------------------------------------------------------
    def add(self, app_id: str) -> None:
        with self._lock:
            if app_id == "*":
                self._full = True
            else:
                self._pending.add(app_id)
            self._lock.notify()

    def poll(self) -> None:
        """Rows not served yet (a nudge lost, a reconciler restarted), and a full pass now and then."""
        last_full = time.monotonic()
        while not self.stop.wait(POLL):
            try:
                for app_id in AppRoute.objects.filter(served__lt=F("generation")).values_list("app_id", flat=True):
                    self.add(app_id)
            except Exception:  # noqa: BLE001 - a database hiccup: the next poll tries again
                log.exception("polling the database failed")
            finally:
                db.connection.close()
            if time.monotonic() - last_full >= self.resync:
                last_full = time.monotonic()
                self.add("*")

    # -- the writer ---------------------------------------------------------------------------------
    def run(self) -> None:
        self._sock = nudges.receive(str(settings.DATA_DIR / WAKE_SOCKET), self.stop, self.add)
        threading.Thread(target=self.poll, name="poll", daemon=True).start()
        try:
            while not self.stop.is_set():
                with self._lock:
                    while not (self._full or self._pending or self.stop.is_set()):
                        self._lock.wait(1.0)
                    full, apps = self._full, sorted(self._pending)
                    self._full, self._pending = False, set()
                if self.stop.is_set():
                    break
                try:
                    self.serve(None if full else apps)
                except RouterError as exc:
                    log.warning("the router could not serve: %s", exc)
                    self.stop.wait(1.0)
                    with self._lock:
                        self._full = self._full or full
                        self._pending.update(apps)
                except Exception:  # noqa: BLE001 - a database hiccup: tried again
                    log.exception("serving routes failed")
                    self.stop.wait(1.0)
                    self.add("*")
                finally:
                    db.connection.close()
        finally:
            if self._sock is not None:
                self._sock.close()

    def serve(self, apps: list[str] | None) -> None:
        """Serve the given apps (None: every app, and nothing else) as the database has them now."""
        from .runtime import route_certificates, route_for, route_settings

        if not self.router.running():
            self.router.start()
        rows = {row.app_id: row for row in (AppRoute.objects.all() if apps is None
                                            else AppRoute.objects.filter(app_id__in=apps))}
        query = App.objects.prefetch_related("domains")
        found = {app.id: app for app in (query if apps is None else query.filter(id__in=apps))}
        certificates = route_certificates() if apps is None or len(apps) > 1 else None
        app_settings = route_settings(None if apps is None else list(found))
        changes: dict[str, Route | None] = {}
        for app_id in (found if apps is None else apps):
            app, row = found.get(app_id), rows.get(app_id)
            if app is None:
                changes[app_id] = None
                continue
            changes[app_id] = route_for(app, _endpoints(app_id, row.upstreams if row else []), certificates,
                                        backups=_endpoints(app_id, row.backups if row else []),
                                        app_settings=app_settings.get(app_id))
        generations = {app_id: row.generation for app_id, row in rows.items()}
        if apps is None:
            result = self.router.update(changes, only_if_changed=True, remove_others=True, wait=False)
            self.passes += 1
        else:
            result = self.router.update(changes, wait=False)
        gone = [app_id for app_id in rows if app_id not in found]
        if gone:
            AppRoute.objects.filter(app_id__in=gone).delete()
        served = {app_id: g for app_id, g in generations.items() if app_id in found}
        if result is not None and result.draining:
            with self._lock:
                for app_id in served:
                    self._draining[app_id] = self._draining.get(app_id, 0) + 1
            self.spawn(self._after_drains, result, served)
        else:
            with self._lock:
                busy = set(self._draining)
            self._record({a: g for a, g in served.items() if a not in busy}, result)

    @staticmethod
    def _on_a_thread(work, *args) -> None:
        def run():
            try:
                work(*args)
            finally:
                db.connection.close()  # this thread's own

        threading.Thread(target=run, daemon=True).start()

    def _after_drains(self, result: ApplyResult, served: dict[str, int]) -> None:
        try:
            self.router.finish_drains(result)
            self._record(served, result)
        except Exception:  # noqa: BLE001 - the next pass serves it again
            log.exception("finishing drains failed")
        finally:
            with self._lock:
                for app_id in served:
                    self._draining[app_id] -= 1
                    if not self._draining[app_id]:
                        del self._draining[app_id]

    @staticmethod
    def _record(served: dict[str, int], result: ApplyResult | None) -> None:
        now = timezone.now()
        for app_id, generation in served.items():
            problem = result.rejected.get(app_id, "") if result is not None else ""
            AppRoute.objects.filter(pk=app_id, served__lt=generation).update(served=generation, served_at=now,
                                                                             problem=problem)
