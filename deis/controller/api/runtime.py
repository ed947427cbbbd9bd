"""Putting releases into effect: the scheduler runs them and the router is switched to them.

The router's configuration always covers every app: a switch during one app's deploy keeps the
others' current endpoints, and domain or certificate changes re-apply the same way.

Every change of what runs holds the app's scheduler lock from reading the desired state to
running it, so two deploys of one app queue (the later release wins, never a mix) and the
reconciler never acts on a decision half made.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor

from django import db

from django.conf import settings

from deis.builder.repos import repo_path
from deis.logger import LogStore, format_line, platform_line
from deis.router import Certificate as RouteCertificate, Route, Router, RouterError
from deis.scheduler import (DeployError, Endpoint, ReleaseSpec, SchedulerError, get_scheduler, merge_report,
                            new_report)

RECONCILE_WORKERS = 4  # apps converged at once by a reconcile pass

from .models import App, Certificate, Release
from .releases import release_spec

log = logging.getLogger("deis.controller")


class ReleasePhaseError(DeployError):
    """The Procfile's `release` command failed: the deploy stops before any process starts."""


def router() -> Router:
    return Router(settings.DATA_DIR, http_port=settings.ROUTER_HTTP_PORT,
                  https_port=settings.ROUTER_HTTPS_PORT, install=False)


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


def default_structure(spec: ReleaseSpec) -> dict:
    """After the first deploy: web=1 when there is a web type (cmd=1 for an image's CMD), others 0."""
    types = spec.process_types()
    first = "web" if "web" in types else ("cmd" if types == ["cmd"] else None)
    return {t: int(t == first) for t in types}


def route_certificates() -> list[RouteCertificate]:
    return [RouteCertificate(c.common_name, c.certificate, c.key) for c in Certificate.objects.all()]


def route_for(app: App, endpoints: list[Endpoint], certificates: list[RouteCertificate] | None = None,
              backups: list[Endpoint] = ()) -> Route:
    """The app's route: its host names, the certificates covering them, `endpoints` as upstreams
    (and `backups`, used by the router only when no upstream answers)."""
    if certificates is None:
        certificates = route_certificates()
    hosts = [app.url, *(d.domain for d in app.domains.all())]
    return Route(app=app.id, hosts=hosts, upstreams=[(e.address, e.port) for e in endpoints],
                 backups=[(e.address, e.port) for e in backups],
                 certificates=[c for c in certificates if any(c.covers(h) for h in hosts)])


def refresh_routes() -> None:
    """After a change of apps, domains or certificates: every app's hosts and certificates from the
    database, upstreams left as they are (deploys and the reconciler own those, each under the
    app's lock). No-op without a runtime."""
    if not get_scheduler().available:
        return
    certificates = route_certificates()
    changes = {app.id: route_for(app, [], certificates) for app in App.objects.prefetch_related("domains")}
    router().update(changes, keep_upstreams=True, remove_others=True)


def switch_for(app: App):
    """What the scheduler calls once new processes are healthy: route the app to them."""
    def switch(endpoints: list[Endpoint], backups: list[Endpoint] = ()) -> None:
        result = router().update({app.id: route_for(app, endpoints, backups=backups)})
        if app.id in result.rejected:  # nginx keeps the old route: the old processes must stay
            raise RuntimeError(f"the router refused the new route: {result.rejected[app.id]}")
        if result.unconfirmed:
            raise RuntimeError("; ".join(result.warnings))
    return switch


def _structure_text(structure: dict) -> str:
    return " ".join(f"{t}={n}" for t, n in sorted(structure.items())) or "nothing"


def scale(app: App, release: Release, structure: dict, user=None) -> None:
    scheduler = get_scheduler()
    with scheduler.locked(app.id):
        scheduler.scale(release_spec(release), structure, switch_for(app))
        App.objects.filter(pk=app.pk).update(structure=structure)
    who = f"{user.username} " if user is not None else ""
    event(app.id, f"{who}scaled {_structure_text(structure)}")


def deploy(app: App, release: Release, structure: dict | None = None) -> None:
    """Run `release` at `structure` (the app's desired counts by default). A release that never
    becomes healthy, or whose release command fails, is marked failed with the reason and the old
    one keeps serving. When a newer release was made meanwhile, its own deploy runs it instead."""
    scheduler = get_scheduler()
    with scheduler.locked(app.id):
        newest = app.releases.filter(failed=False).order_by("-version").values_list("version", flat=True).first()
        if newest is not None and newest > release.version:
            return
        spec = release_spec(release)
        if spec.image == "":
            return  # a release without a build (config before the first deploy) runs nothing
        current = App.objects.filter(pk=app.pk).values_list("structure", flat=True).first()
        wanted = structure if structure is not None else (current or default_structure(spec))
        try:
            if scheduler.available and spec.procfile.get("release"):
                release_phase(scheduler, spec)
            scheduler.deploy(spec, wanted, switch_for(app))
        except DeployError as exc:
            raise mark_failed(app.id, release, exc) from exc
        if scheduler.available and wanted != current:
            App.objects.filter(pk=app.pk).update(structure=wanted)
    if scheduler.available:
        event(app.id, f"v{release.version} deployed ({_structure_text(wanted)}): {release.summary}")


def mark_failed(app_id: str, release: Release, exc: DeployError) -> DeployError:
    """Record why `release` was not deployed (with the process's last lines), log it, and return
    the error to raise, worded with the release's version."""
    failure = "\n".join([str(exc), *exc.logs])
    Release.objects.filter(pk=release.pk).update(failed=True, failure=failure)
    what = "was not deployed" if isinstance(exc, ReleasePhaseError) else "did not become healthy"
    message = f"v{release.version} {what}: {exc}"
    event(app_id, message)
    return type(exc)(message, exc.logs)


def destroy(app: App) -> None:
    """Remove the app's processes, the images built for it alone, its routes and its log."""
    from deis.builder import image_repository

    scheduler = get_scheduler()
    own = image_repository(app.id) + ":"
    images = sorted({image for image in app.builds.values_list("image", flat=True) if image.startswith(own)})
    with scheduler.locked(app.id):
        scheduler.destroy(app.id, images=images)
        app.delete()
        # The app's git repository: a new app of the same name starts with an empty one.
        shutil.rmtree(repo_path(settings.DATA_DIR, app.id), ignore_errors=True)
    refresh_routes()
    try:
        log_store().remove(app.id)
    except OSError:
        pass


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
                  blocking: bool = True) -> dict:
    """Converge one app under its lock: the engine to what the database says (an app the database
    no longer has loses everything), then its route to the processes that serve. A release change
    that never completed is rolled out, or marked failed when it cannot become healthy. While
    replacements boot and nothing else serves, the route keeps its last upstreams rather than
    emptying (report["booting"] names them, so a caller can look again soon). `blocking=False`
    raises LockBusy when a deploy holds the app: that deploy routes it itself."""
    scheduler = get_scheduler()
    report = new_report()
    routed = routed or router()
    with scheduler.locked(app_id, blocking=blocking):
        app = App.objects.filter(id=app_id).first()
        if app is None:  # destroyed, or never ours
            merge_report(report, scheduler.reconcile_app(None, {}, app=app_id))
            if app_id in routed.routes():
                routed.update({app_id: None})
            return report
        release = app.current_release()
        spec = release_spec(release) if release is not None and release.build_id else None
        if spec is None:
            merge_report(report, scheduler.reconcile_app(None, {}, app=app.id))
        else:
            try:
                structure = app.structure or default_structure(spec)
                merge_report(report, scheduler.reconcile_app(spec, structure, switch=switch_for(app)))
            except DeployError as exc:
                report["errors"][app.id] = str(mark_failed(app.id, release, exc))
        # Under the app's lock no rollout is half done: the engine's endpoints are the ones to
        # serve (after a restart they have new addresses).
        endpoints = scheduler.endpoints(app.id)
        booting = scheduler.booting(app.id) if not endpoints else []
        report["booting"].extend(booting)
        if endpoints or not booting or app.id not in routed.routes():
            routed.update({app.id: route_for(app, endpoints, certificates)}, only_if_changed=True)
    if app.id in report["deployed"]:
        event(app.id, "the reconciler completed an interrupted deploy")
    return report


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


def apps_to_reconcile(routed: Router) -> list[str]:
    """Every app the database, the engine or the router knows: reconcile_app removes what is left
    of one the database no longer has."""
    return sorted(set(App.objects.values_list("id", flat=True)) | get_scheduler().apps() | set(routed.routes()))
