"""Putting releases into effect: the scheduler runs them and the router is switched to them.

The router's configuration always covers every app: a switch during one app's deploy keeps the
others' current endpoints, and domain or certificate changes re-apply the same way.
"""

from __future__ import annotations

from django.conf import settings

from deis.router import Certificate as RouteCertificate, Route, Router
from deis.scheduler import DeployError, Endpoint, ReleaseSpec, get_scheduler

from .models import App, Certificate, Release
from .releases import release_spec


def router() -> Router:
    return Router(settings.DATA_DIR, http_port=settings.ROUTER_HTTP_PORT,
                  https_port=settings.ROUTER_HTTPS_PORT, install=False)


def default_structure(spec: ReleaseSpec) -> dict:
    """After the first deploy: web=1 when there is a web type (cmd=1 for an image's CMD), others 0."""
    types = spec.process_types()
    first = "web" if "web" in types else ("cmd" if types == ["cmd"] else None)
    return {t: int(t == first) for t in types}


def routes(overrides: dict[str, list[Endpoint]] | None = None) -> list[Route]:
    """Routes of every app, with `overrides` standing in for the engine's endpoints of some apps."""
    scheduler, overrides = get_scheduler(), overrides or {}
    certificates = [RouteCertificate(c.common_name, c.certificate, c.key) for c in Certificate.objects.all()]
    result = []
    for app in App.objects.prefetch_related("domains"):
        hosts = [app.url, *(d.domain for d in app.domains.all())]
        endpoints = overrides[app.id] if app.id in overrides else scheduler.endpoints(app.id)
        result.append(Route(app=app.id, hosts=hosts,
                            upstreams=[(e.address, e.port) for e in endpoints],
                            certificates=[c for c in certificates if any(c.covers(h) for h in hosts)]))
    return result


def refresh_routes() -> None:
    """Re-apply the router after a change of apps, domains or certificates (no-op without a runtime)."""
    if get_scheduler().available:
        router().apply(routes())


def switch_for(app: App):
    """What the scheduler calls once new processes are healthy: route the app to them."""
    def switch(endpoints: list[Endpoint]) -> None:
        router().apply(routes({app.id: endpoints}))
    return switch


def scale(app: App, release: Release, structure: dict) -> None:
    get_scheduler().scale(release_spec(release), structure, switch_for(app))
    App.objects.filter(pk=app.pk).update(structure=structure)


def deploy(app: App, release: Release, structure: dict | None = None) -> None:
    """Run `release` at `structure` (the app's desired counts by default). A release that never
    becomes healthy is marked failed with the reason and the old one keeps serving."""
    scheduler = get_scheduler()
    spec = release_spec(release)
    if spec.image == "":
        return  # a release without a build (config before the first deploy) runs nothing
    wanted = structure if structure is not None else (app.structure or default_structure(spec))
    try:
        scheduler.deploy(spec, wanted, switch_for(app))
    except DeployError as exc:
        failure = "\n".join([str(exc), *exc.logs])
        Release.objects.filter(pk=release.pk).update(failed=True, failure=failure)
        raise DeployError(f"v{release.version} did not become healthy: {exc}", exc.logs) from exc
    if scheduler.available and wanted != app.structure:
        App.objects.filter(pk=app.pk).update(structure=wanted)
