"""Putting releases into effect: the scheduler runs them and the router is switched to them.

The router's configuration always covers every app: a switch during one app's deploy keeps the
others' current endpoints, and domain or certificate changes re-apply the same way.

The API only records changes (`queue`); the deployer's workers run them (`reconcile_app`), each
app under its lease (rollouts.claim) and the engine's lock, from reading the desired state to
running it, so two changes of one app queue (the later release wins, never a mix).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from django import db

from django.conf import settings

from deis.logger import LogStore, format_line, platform_line, router_log
from deis.router import Certificate as RouteCertificate, Route, RouterError
from deis.scheduler import (Convergence, DeployError, Endpoint, LockBusy, ReleaseSpec, Restart, SchedulerError,
                            SchedulerUnavailable, UnavailableScheduler, get_scheduler, merge_report,
                            new_report)

from . import rollouts
from .models import App, CertificateDomain, Release, Rollout
from .releases import default_structure, release_spec, write_transaction

if TYPE_CHECKING:
    from deis.router import Router

RECONCILE_WORKERS = 4  # apps converged at once by a reconcile pass (DEIS_DEPLOY_WORKERS in the deployer)

log = logging.getLogger("deis.controller")


class ReleasePhaseError(DeployError):
    """The Procfile's `release` command failed: the deploy stops before any process starts."""


def router() -> Router:
    """Where route changes go: see routing.desired_or_host_router."""
    from .routing import desired_or_host_router

    return desired_or_host_router()


def log_store() -> LogStore:
    return LogStore(settings.LOG_DIR)


def _log(app_id: str, lines: list[str]) -> None:
    try:
        log_store().append(app_id, lines)
    except OSError as exc:  # the log is a courtesy; the change itself has happened
        log.warning("could not write to the log of %s: %s", app_id, exc)


def event(app_id: str, message: str) -> None:
    """A platform line in the app's log (`deis logs` shows it among the processes' lines)."""
    _log(app_id, [platform_line(message)])


def log_run(app_id: str, user, command: str, code: int, output: str) -> None:
    """A one-off's output in the app's log, tagged `run` (the logger does not follow one-offs:
    they may be gone before it could attach)."""
    lines = [format_line(app_id, "run", line) for line in output.splitlines()[-1000:]]
    _log(app_id, [*lines, platform_line(f"{user.username} ran `{command}`: exit code {code}")])


def route_certificates(app: App | None = None) -> list[RouteCertificate]:
    """Each certificate fit to serve (tls.problem: what the router and clients accept), with `hosts` the
    domains it is attached to whose app its owner owns or shares (admins: any). Nothing else reaches
    the router: a certificate naming another tenant's host is never in that tenant's route."""
    attachments = CertificateDomain.objects.select_related("certificate__owner", "domain__app")
    if app is not None:
        attachments = attachments.filter(domain__app=app)
    shared: dict[int, set] = {}
    hosts: dict = {}
    for a in attachments.order_by("domain__domain"):
        cert, target = a.certificate, a.domain.app
        owner = cert.owner
        if not owner.is_superuser and target.owner_id != owner.pk:
            if owner.pk not in shared:
                shared[owner.pk] = set(App.collaborators.through.objects.filter(user=owner.pk)
                                       .values_list("app_id", flat=True))
            if target.pk not in shared[owner.pk]:
                continue
        hosts.setdefault(cert.pk, (cert, []))[1].append(a.domain.domain)
    served = [RouteCertificate(cert.common_name, cert.certificate, cert.key, hosts=tuple(names))
              for cert, names in hosts.values()]
    return [c for c in served if c.problem() is None]


def route_for(app: App, endpoints: list[Endpoint], certificates: list[RouteCertificate] | None = None,
              backups: list[Endpoint] = (), app_settings: tuple | None = None) -> Route:
    """The app's route: its host names, the certificates covering them, `endpoints` as upstreams
    (and `backups`, used by the router only when no upstream answers), and its settings as the
    database has them now (never a copy cached on `app`, which a rollout holds for minutes):
    maintenance mode and the allow-list (models/appsettings.py)."""
    if certificates is None:
        certificates = route_certificates(app)
    hosts = [app.url, *(d.domain for d in app.domains.all())]
    served = []
    for c in certificates:  # only the hosts of this app each is attached to
        mine = tuple(h for h in (c.hosts or ()) if h in hosts)
        if mine:
            served.append(replace(c, hosts=mine))
    maintenance, allow = app_settings or App.objects.filter(pk=app.pk).values_list(
        "appsettings__maintenance", "appsettings__whitelist").first() or (False, [])
    return Route(app=app.id, hosts=hosts, upstreams=[(e.address, e.port) for e in endpoints],
                 backups=[(e.address, e.port) for e in backups], certificates=served,
                 maintenance=bool(maintenance), allow=list(allow or []))


def route_settings(app_ids: list[str] | None = None) -> dict[str, tuple]:
    """{app: (maintenance, allow-list)} of many apps in one query (see route_for)."""
    rows = App.objects.all() if app_ids is None else App.objects.filter(id__in=app_ids)
    return {app_id: (m, w) for app_id, m, w in rows.values_list("id", "appsettings__maintenance",
                                                                "appsettings__whitelist")}


def refresh_routes() -> None:
    """After a change of apps, domains or certificates: every app's hosts and certificates from the
    database, upstreams left as they are (deploys and the reconciler own those, each under the
    app's lock). No-op without a runtime."""
    if not get_scheduler().available:
        return
    certificates, app_settings = route_certificates(), route_settings()
    changes = {app.id: route_for(app, [], certificates, app_settings=app_settings.get(app.id))
               for app in App.objects.prefetch_related("domains")}
    router().update(changes, keep_upstreams=True, remove_others=True)


def switch_for(app: App):
    """What the scheduler calls once new processes are healthy: route the app to them (unless it
    was destroyed meanwhile: its route is gone, and stays gone)."""
    def switch(endpoints: list[Endpoint], backups: list[Endpoint] = ()) -> None:
        if not App.objects.filter(pk=app.pk).exists():
            return
        result = router().update({app.id: route_for(app, endpoints, backups=backups)})
        if app.id in result.rejected:  # the router keeps the old route: the old processes must stay
            raise RuntimeError(f"the router refused the new route: {result.rejected[app.id]}")
        if result.unconfirmed:
            raise RuntimeError("; ".join(result.warnings))
    return switch


def structure_text(structure: dict) -> str:
    return " ".join(f"{t}={n}" for t, n in sorted(structure.items())) or "nothing"


def require_runtime(what: str) -> None:
    """Refuse (503, with the reason) what cannot be done without a runtime."""
    if not get_scheduler().available:
        raise SchedulerUnavailable(UnavailableScheduler.reason.format(what=what))


def queue(app_id: str, **what) -> int:
    """Record a change of what should run and queue the app for the deployer (see rollouts.record);
    the generation to wait for, or 0 without a runtime (nothing will run it)."""
    if not get_scheduler().available:
        return 0
    return rollouts.record(app_id, **what)


def failure_text(message: str, logs: list[str]) -> str:
    """The reason, then the new processes' last lines: what the person deploying reads."""
    if not logs:
        return message
    return "\n".join([message, "Last lines of its output:", *("  " + line for line in logs[-20:])])


def mark_failed(app_id: str, release: Release, exc: DeployError) -> DeployError:
    """Record why `release` was not deployed (with the process's last lines), log it, and return
    the error to raise, worded with the release's version."""
    failure = "\n".join([str(exc), *exc.logs])
    Release.objects.filter(pk=release.pk).update(failed=True, failure=failure, state="failed")
    what = "was not deployed" if isinstance(exc, ReleasePhaseError) else "did not become healthy"
    message = f"v{release.version} {what}: {exc}"
    event(app_id, message)
    return type(exc)(message, exc.logs)


def destroy(app: App) -> None:
    """Forget the app (its releases, routes, repository, build cache and log) at once; the deployer
    removes its processes and the images built for it alone."""
    from deis.builder import image_repository
    from deis.builder.repos import remove_app

    own = image_repository(app.id) + ":"
    images = sorted({image for image in app.builds.values_list("image", flat=True) if image.startswith(own)})
    app_id = app.id
    with write_transaction():
        app.delete()
    # The log first, leaving its tombstone: what the app's processes print while the deployer stops
    # them is dropped by the logger, so a new app of the same name starts with an empty log.
    try:
        log_store().remove(app_id)
    except OSError as exc:
        log.warning("could not remove the log of %s: %s", app_id, exc)
    # Its router metrics too (deis/logger/router_log.py): a new app of the name starts from zero.
    try:
        router_log.remove(settings.DATA_DIR, app_id)
    except OSError as exc:
        log.warning("could not remove the metrics of %s: %s", app_id, exc)
    # The builder's repository and build cache: a new app of the same name starts from nothing.
    remove_app(settings.DATA_DIR, app_id)
    queue(app_id, destroyed=True, images=images)
    refresh_routes()


def release_phase(scheduler, spec: ReleaseSpec) -> None:
    """Run the Procfile's `release` command in a one-off container of the new release."""
    command = spec.procfile["release"]
    code, output = scheduler.run(spec, command, timeout=settings.RELEASE_PHASE_TIMEOUT)
    lines = output.splitlines()
    if lines:
        log_store().append(spec.app, [platform_line(f"release command: {line}", "release") for line in lines[-200:]])
    if code != 0:
        raise ReleasePhaseError(f"the release command `{command}` exited with code {code}", lines[-50:])


def reconcile_app(app_id: str, routed: Router | None = None, certificates: list | None = None,
                  blocking: bool = True, owner: str | None = None) -> dict:
    """The deployer's work on one app, holding its lease (raises LockBusy when another worker
    holds it): roll out a change not yet observed, else repair what drifted; then route the app
    to the processes that serve. See `_converge`."""
    owner = owner or rollouts.worker_id()
    if not rollouts.claim(app_id, owner):
        raise LockBusy(f"{app_id} is being rolled out by another worker")
    with rollouts.Lease(app_id, owner):
        return _converge(app_id, routed or router(), certificates, blocking)


def _converge(app_id: str, routed: Router, certificates: list | None, blocking: bool) -> dict:
    """Under the app's lease and engine lock: an app the database no longer has loses everything
    (processes, network, its own images, route); a release not yet deployed, a scale or a restart
    is rolled out health-checked (the old processes serve until the switch); otherwise the engine's
    quick repair starts what died. While replacements boot and nothing else serves, the route keeps
    its last upstreams rather than emptying (report["booting"] names them, so a caller can look
    again soon)."""
    scheduler = get_scheduler()
    report = new_report()
    with scheduler.locked(app_id, blocking=blocking):
        rollout = Rollout.objects.filter(app_id=app_id).first()
        app = App.objects.filter(id=app_id).first()
        if app is None:  # destroyed, or never ours
            merge_report(report, scheduler.reconcile_app(None, {}, app=app_id))
            if rollout is not None and rollout.images:
                scheduler.remove(app_id, rollout.images)
            if app_id in routed.routes():
                routed.update({app_id: None})
            rollouts.forget(app_id)
            return report
        generation = rollout.generation if rollout else 0
        unobserved = rollout is not None and rollout.observed < generation
        release = app.current_release()
        spec = release_spec(release) if release is not None and release.build_id else None
        if spec is None:  # nothing to run yet (config before the first build)
            merge_report(report, scheduler.reconcile_app(None, {}, app=app.id))
            if release is not None and release.state != "deployed":
                Release.objects.filter(pk=release.pk).update(state="deployed")
            if unobserved:
                rollouts.finish(app.id, generation)
        elif release.state != "deployed" or unobserved:
            _roll_out(scheduler, app, release, spec, rollout, generation, report)
        else:
            structure = app.structure or default_structure(spec)
            merge_report(report, scheduler.reconcile_app(spec, structure, switch=switch_for(app)))
        # Under the app's lock no rollout is half done: the engine's endpoints are the ones to
        # serve (after a restart they have new addresses).
        endpoints = scheduler.endpoints(app.id)
        booting = scheduler.booting(app.id) if not endpoints else []
        report["booting"].extend(booting)
        if endpoints or not booting or app.id not in routed.routes():
            routed.update({app.id: route_for(app, endpoints, certificates)}, only_if_changed=True)
    return report


def _roll_out(scheduler, app: App, release: Release, spec: ReleaseSpec, rollout, generation: int,
              report: dict) -> None:
    """Roll `release` out at the app's counts (a new release, a scale or a restart of the running
    one), the steps written to the rollout as they happen. A failure never replaces what ran: a new
    release is marked failed, a failed scale goes back to the counts that ran."""
    was_deployed = release.state == "deployed"
    rollouts.begin(app.id, release)
    structure = app.structure or default_structure(spec)
    restart = Restart(**rollout.restart) if rollout is not None and rollout.restart else None

    def say(phase: str, message: str) -> None:
        rollouts.progress(app.id, phase, message)

    try:
        if not was_deployed and spec.procfile.get("release") and \
                (rollout is None or rollout.release_phase_done != release.version):
            say("starting", f"running the release command `{spec.procfile['release']}`")
            release_phase(scheduler, spec)
            Rollout.objects.filter(app_id=app.id).update(release_phase_done=release.version)
        scheduler.converge(Convergence(spec, structure, switch_for(app), say, restart))
    except DeployError as exc:
        if was_deployed:  # a scale or restart of the running release: it keeps running as it was
            revert = rollout.revert_structure if rollout is not None else None
            if revert is not None:
                App.objects.filter(pk=app.pk).update(structure=revert)
            message = f"{structure_text(structure)} of v{release.version} did not become healthy: {exc}"
            if revert is not None:
                message += f"; back to {structure_text(revert)}"
            event(app.id, message)
        else:
            message = str(mark_failed(app.id, release, exc))
        rollouts.finish(app.id, generation, "failed", failure_text(message, exc.logs))
        report["errors"][app.id] = message
        return
    Release.objects.filter(pk=release.pk).update(state="deployed")
    Release.objects.filter(app=app, version__lt=release.version, state__in=("pending", "deploying")) \
        .update(state="superseded")
    if structure != app.structure:
        App.objects.filter(pk=app.pk).update(structure=structure)
    rollouts.finish(app.id, generation)
    report["deployed"].append(app.id)
    what = "restarted" if restart is not None and was_deployed else "deployed"
    event(app.id, f"v{release.version} {what} ({structure_text(structure)}): {release.summary}")


def _reconcile_reported(app_id: str, routed: Router, certificates: list) -> dict:
    """reconcile_app with its errors in the report, so one app's failure never stops a pass."""
    report = new_report()
    try:
        merge_report(report, reconcile_app(app_id, routed, certificates))
    except SchedulerError as exc:
        report["errors"][app_id] = str(exc)
    except RouterError as exc:
        report["errors"][f"router:{app_id}"] = str(exc)
    return report


def _reconcile_in_thread(app_id: str, routed: Router, certificates: list) -> dict:
    try:
        return _reconcile_reported(app_id, routed, certificates)
    finally:
        db.connection.close()  # the pool thread's own connection


def reconcile(workers: int = RECONCILE_WORKERS) -> dict:
    """One pass of the reconciler over every app, `workers` apps at a time (each under its own
    lock, so a slow rollout of one app never stalls the others). Level-triggered and idempotent:
    running it again changes nothing."""
    scheduler = get_scheduler()
    report = new_report()
    if not scheduler.available:
        return report
    routed = router()
    try:
        if not routed.running():
            routed.start()
    except RouterError as exc:
        report["errors"]["router"] = str(exc)
    certificates = route_certificates()
    apps = apps_to_reconcile(routed)
    if workers <= 1:
        results = [_reconcile_reported(app_id, routed, certificates) for app_id in apps]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda app_id: _reconcile_in_thread(app_id, routed, certificates), apps))
    for result in results:
        merge_report(report, result)
    return report


def desired_marks() -> dict[str, tuple]:
    """{app: what the database wants of it}, in three queries: its structure and update stamp,
    its newest release's version and state, and its rollout's generations. A resync compares
    them (with the engine's fingerprints and the router's routes) with the previous resync's."""
    from django.db.models import Max

    newest = {row["app_id"]: row["version"] for row in
              Release.objects.values("app_id").annotate(version=Max("version"))}
    states = {(app_id, version): state for app_id, version, state in
              Release.objects.filter(version__in=set(newest.values())).values_list("app_id", "version", "state")}
    rolled = {app_id: (generation, observed, phase) for app_id, generation, observed, phase in
              Rollout.objects.values_list("app_id", "generation", "observed", "phase")}
    return {app_id: (repr(structure), str(updated), newest.get(pk), states.get((pk, newest.get(pk))),
                     rolled.get(app_id))
            for pk, app_id, structure, updated in App.objects.values_list("pk", "id", "structure", "updated")}


def apps_to_reconcile(routed: Router) -> list[str]:
    """Every app the database, the engine or the router knows: reconcile_app removes what is left
    of one the database no longer has."""
    return sorted(set(App.objects.values_list("id", flat=True)) | get_scheduler().apps() | set(routed.routes())
                  | set(Rollout.objects.values_list("app_id", flat=True)))
