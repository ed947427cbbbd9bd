"""The scheduler's switch: the old processes are stopped only once the router really serves the
new ones, so a route the router refused or a change it did not confirm fails the deploy instead."""

import pytest

from deis.controller.api import runtime
from deis.controller.api.models import App
from deis.router import ApplyResult, Router
from deis.scheduler import Endpoint


@pytest.fixture
def switch(app, monkeypatch):
    answers = []

    class StubRouter:
        def update(self, changes):
            answers.append(changes)
            return self.result

    stub = StubRouter()
    monkeypatch.setattr(runtime, "router", lambda: stub)
    endpoints = [Endpoint(app=app, type="web", num=1, address="172.17.0.9", port=5000)]
    return stub, lambda: runtime.switch_for(App.objects.get(id=app))(endpoints), answers


def test_a_served_switch_and_one_without_a_running_router_pass(switch, app):
    stub, run, answers = switch
    stub.result = ApplyResult(generation=2, applied=[app], reloaded=True)
    run()
    assert answers[0][app].upstreams == [("172.17.0.9", 5000)]
    stub.result = ApplyResult(generation=3, applied=[app])  # router down: the reconciler starts it
    run()


def test_a_refused_route_fails_the_switch(switch, app):
    stub, run, _ = switch
    stub.result = ApplyResult(generation=2, rejected={app: "haproxy: key values mismatch"}, kept=[app],
                              reloaded=True)
    with pytest.raises(RuntimeError, match="refused the new route: haproxy: key values mismatch"):
        run()


def test_an_unconfirmed_reload_fails_the_switch(switch, app):
    stub, run, _ = switch
    stub.result = ApplyResult(generation=2, applied=[app], unconfirmed=True,
                              warnings=["haproxy did not take the new configuration in time"])
    with pytest.raises(RuntimeError, match="did not take the new configuration"):
        run()


def test_router_reports_an_unconfirmed_reload_only_when_haproxy_runs(tmp_path):
    result = Router(tmp_path, http_port=1, https_port=None, install=False).apply([])
    assert not result.reloaded and not result.unconfirmed
