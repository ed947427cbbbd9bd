"""Routes through the database (api/routing.py): the deployer's and the API's changes wait for the
router's reconciler, which serves them from the database and writes back what it serves."""

from types import SimpleNamespace

import pytest

from deis.controller.api import routing
from deis.controller.api.models import App, AppRoute
from deis.router import ApplyResult, Route


class StandInRouter:
    """Records what it is told; `refuse` names apps whose route it rejects."""

    def __init__(self):
        self.served: dict[str, Route] = {}
        self.calls: list[tuple[dict, dict]] = []
        self.refuse: dict[str, str] = {}
        self.draining: list = []

    def running(self):
        return True

    def update(self, changes, **options):
        self.calls.append((changes, options))
        result = ApplyResult()
        if options.get("remove_others"):
            self.served = {a: r for a, r in self.served.items() if a in changes}
        for app, route in changes.items():
            if app in self.refuse:
                result.rejected[app] = self.refuse[app]
            elif route is None:
                self.served.pop(app, None)
            else:
                self.served[app] = route
        result.draining = list(self.draining)
        return result

    def finish_drains(self, result):
        result.draining = []
        return result


@pytest.fixture
def served(db, monkeypatch):
    """A reconciler over a stand-in router, run at each nudge (as the real one is, at once)."""
    router = StandInRouter()
    reconciler = routing.RouteReconciler(router)
    monkeypatch.setattr(routing, "wake", lambda what: reconciler.serve(None if what == "*" else [what]))
    return SimpleNamespace(router=router, reconciler=reconciler, desired=routing.DesiredRoutes(confirm_timeout=0.3))


def test_a_switch_returns_once_the_router_serves_it(served, app):
    result = served.desired.update({app: Route(app, [], [("10.0.0.5", 5000)])})
    assert result.applied == [app] and not result.unconfirmed
    route = served.router.served[app]
    assert route.upstreams == [("10.0.0.5", 5000)]
    assert route.hosts[0].startswith(app + ".")  # hosts come from the database, not the caller
    row = AppRoute.objects.get(pk=app)
    assert row.served == row.generation == 1 and row.served_at is not None and row.problem == ""
    # the same again, only if changed: nothing to do, nothing waited for
    assert served.desired.update({app: Route(app, [], [("10.0.0.5", 5000)])}, only_if_changed=True) is None
    assert len(served.router.calls) == 1


def test_a_refused_route_is_reported_to_the_switch(served, app):
    served.router.refuse[app] = "haproxy: bad"
    result = served.desired.update({app: Route(app, [], [("10.0.0.5", 5000)])})
    assert result.rejected == {app: "haproxy: bad"}
    assert AppRoute.objects.get(pk=app).problem == "haproxy: bad"


def test_without_a_reconciler_a_switch_is_unconfirmed(db, app, monkeypatch):
    monkeypatch.setattr(routing, "wake", lambda what: None)
    result = routing.DesiredRoutes(confirm_timeout=0.2).update({app: Route(app, [], [("10.0.0.5", 5000)])})
    assert result.unconfirmed and "did not confirm" in result.warnings[0]
    assert AppRoute.objects.get(pk=app).served == 0


def test_served_only_after_the_old_servers_drained(served, app):
    served.router.draining = [("a0", "p_old")]
    seen = []

    def finish(result):
        seen.append(AppRoute.objects.get(pk=app).served)
        result.draining = []
        return result

    served.router.finish_drains = finish
    served.reconciler.spawn = lambda work, *args: work(*args)  # the real one waits on a thread
    result = served.desired.update({app: Route(app, [], [("10.0.0.6", 5000)])})
    assert seen == [0]  # while draining: not served yet
    assert result.applied == [app] and AppRoute.objects.get(pk=app).served == 1


def test_hosts_and_certificates_changes_bump_every_route_and_a_full_pass_serves_them(served, app, alice):
    assert alice.post("/v1/apps", {"id": "second"}).status_code == 201
    served.desired.update({app: Route(app, [], [("10.0.0.5", 5000)])})
    result = served.desired.update({a: Route(a, []) for a in (app, "second")}, keep_upstreams=True,
                                   remove_others=True)
    assert not result.unconfirmed and set(result.applied) == {app, "second"}
    assert served.router.served[app].upstreams == [("10.0.0.5", 5000)]  # kept
    assert served.router.served["second"].upstreams == []
    _, options = served.router.calls[-1]
    assert options.get("remove_others") and options.get("only_if_changed")  # a full pass


def test_a_destroyed_app_loses_its_route_and_its_row(served, app):
    served.desired.update({app: Route(app, [], [("10.0.0.5", 5000)])})
    App.objects.filter(id=app).delete()
    result = served.desired.update({app: None})  # waits until the route, then the row, are gone
    assert not result.unconfirmed
    assert app not in served.router.served and not AppRoute.objects.filter(pk=app).exists()


def test_rows_not_served_yet_are_found_by_the_poll(served, app, monkeypatch):
    """A nudge lost (the reconciler was down): its poll finds the row and serves it."""
    monkeypatch.setattr(routing, "wake", lambda what: None)
    routing.DesiredRoutes(confirm_timeout=0.05).update({app: Route(app, [], [("10.0.0.7", 5000)])})
    pending = list(AppRoute.objects.filter(served__lt=routing.F("generation")).values_list("app_id", flat=True))
    assert pending == [app]
    served.reconciler.serve(pending)
    assert served.router.served[app].upstreams == [("10.0.0.7", 5000)]
    assert AppRoute.objects.get(pk=app).served == 1


def test_a_pass_meanwhile_never_marks_a_draining_app_served(served, app, monkeypatch):
    """The old servers drain (requests in flight); a full pass finds nothing to change. It must
    not mark the row served: the deployer would stop the old process under those requests."""
    later = []
    served.reconciler.spawn = lambda work, *args: later.append((work, args))
    monkeypatch.setattr(routing, "wake", lambda what: None)
    desired = routing.DesiredRoutes(confirm_timeout=0.05)
    desired.update({app: Route(app, [], [("10.0.0.5", 5000)])})
    served.router.draining = [("a0", "p_old")]
    served.reconciler.serve([app])  # switched; the old server drains
    served.router.draining = []
    served.router.update = lambda changes, **options: None  # a full pass: nothing to change
    served.reconciler.serve(None)
    assert AppRoute.objects.get(pk=app).served == 0
    (work, args), = later
    work(*args)  # the drain ends
    assert AppRoute.objects.get(pk=app).served == 1
