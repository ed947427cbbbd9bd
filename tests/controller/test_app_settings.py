"""Maintenance mode and the allow-list (Workflow v2's /settings/ and /whitelist/ on /v1): the API,
its validation, tenancy, and the Route the router is given."""

import json
from types import SimpleNamespace

import pytest

from deis import rules
from deis.controller.api import runtime
from deis.controller.api.models import App, AppSettings
from deis.router import ApplyResult
from deis.scheduler import Endpoint
from tests.controller.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed(monkeypatch):
    """Every router update the controller makes, with a runtime available (refresh_routes acts)."""
    calls = []

    class StubRouter:
        def update(self, changes, **options):
            calls.append((changes, options))
            return ApplyResult(generation=len(calls) + 1, applied=list(changes), reloaded=True)

    monkeypatch.setattr(runtime, "router", lambda: StubRouter())
    monkeypatch.setattr(runtime, "get_scheduler", lambda: SimpleNamespace(available=True))
    return calls


def route(app_id):
    return runtime.route_for(App.objects.get(id=app_id), [])


# --- maintenance ----------------------------------------------------------------------------------

def test_settings_default_then_maintenance_on_and_off(alice, app, routed):
    body = alice.get(f"/v1/apps/{app}/settings/").json()
    assert body["maintenance"] is False and body["whitelist"] == [] and body["app"] == app
    assert {"uuid", "owner", "created", "updated"} <= set(body)
    answer = alice.post(f"/v1/apps/{app}/settings/", {"maintenance": True})
    assert answer.status_code == 201, answer.content
    assert answer.json()["maintenance"] is True and answer.json()["app"] == app
    assert alice.get(f"/v1/apps/{app}/settings").json()["maintenance"] is True
    changes, options = routed[-1]
    assert changes[app].maintenance is True and options["keep_upstreams"]
    assert route(app).maintenance is True
    assert alice.post(f"/v1/apps/{app}/settings", {"maintenance": False}).json()["maintenance"] is False
    assert routed[-1][0][app].maintenance is False and route(app).maintenance is False
    # No change: nothing to tell the router.
    count = len(routed)
    assert alice.post(f"/v1/apps/{app}/settings", {"maintenance": False}).status_code == 201
    assert len(routed) == count


@pytest.mark.parametrize("value", ["yes", 1, 0, None, [], {}, "on", "maybe"])
def test_maintenance_must_be_a_boolean(alice, app, value):
    answer = alice.post(f"/v1/apps/{app}/settings/", {"maintenance": value})
    assert answer.status_code == 400, (value, answer.content)
    assert "maintenance" in answer.json()
    assert alice.get(f"/v1/apps/{app}/settings/").json()["maintenance"] is False


def test_settings_refuse_nothing_and_unknown_fields(alice, app):
    assert alice.post(f"/v1/apps/{app}/settings/", {}).status_code == 400
    answer = alice.post(f"/v1/apps/{app}/settings/", {"routable": False})
    assert answer.status_code == 400 and "routable" in answer.json()
    assert alice.post(f"/v1/apps/{app}/settings/", ["maintenance"]).status_code == 400
    answer = alice.post(f"/v1/apps/{app}/settings/", {"maintenance": "TRUE"})  # a form's spelling
    assert answer.status_code == 201 and answer.json()["maintenance"] is True


def test_settings_may_replace_the_whitelist(alice, app, routed):
    answer = alice.post(f"/v1/apps/{app}/settings/", {"whitelist": ["10.1.2.3/8", "203.0.113.7"]})
    assert answer.status_code == 201 and answer.json()["whitelist"] == ["10.0.0.0/8", "203.0.113.7/32"]
    assert routed[-1][0][app].allow == ["10.0.0.0/8", "203.0.113.7/32"]
    assert alice.post(f"/v1/apps/{app}/settings/", {"whitelist": []}).json()["whitelist"] == []
    assert alice.post(f"/v1/apps/{app}/settings/", {"whitelist": ["nope"]}).status_code == 400


# --- the allow-list ------------------------------------------------------------------------------

def test_whitelist_add_list_remove(alice, app, routed):
    path = f"/v1/apps/{app}/whitelist/"
    assert alice.get(path).json() == {"addresses": []}
    answer = alice.post(path, {"addresses": ["10.0.0.0/8", "2001:DB8::/32", "192.168.1.7"]})
    assert answer.status_code == 201, answer.content
    full = ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7/32"]
    assert answer.json() == {"addresses": full}
    assert routed[-1][0][app].allow == full and route(app).allow == full
    # Duplicates (in any spelling) are not added twice; the answer is the whole list.
    answer = alice.post(path, {"addresses": ["10.9.9.9/8", "172.16.0.0/12", "172.16.0.0/12"]})
    assert answer.status_code == 201 and answer.json() == {"addresses": [*full, "172.16.0.0/12"]}
    assert alice.get(path.rstrip("/")).json()["addresses"] == [*full, "172.16.0.0/12"]
    assert alice.get(f"/v1/apps/{app}/settings").json()["whitelist"] == [*full, "172.16.0.0/12"]
    # Removing: 204; one not in the list removes nothing (404).
    assert alice.delete(path, {"addresses": ["192.168.1.7", "172.16.0.0/12"]}).status_code == 204
    assert alice.get(path).json() == {"addresses": ["10.0.0.0/8", "2001:db8::/32"]}
    answer = alice.delete(path, {"addresses": ["10.0.0.0/8", "8.8.8.8"]})
    assert answer.status_code == 404 and "8.8.8.8/32 is not in the allow-list" in answer.json()["detail"]
    assert alice.get(path).json() == {"addresses": ["10.0.0.0/8", "2001:db8::/32"]}
    assert alice.delete(path, {"addresses": ["10.0.0.0/8", "2001:db8::/32"]}).status_code == 204
    assert route(app).allow == [] and routed[-1][0][app].allow == []


@pytest.mark.parametrize("addresses", [
    ["10.0.0.0/33"], ["nope"], ["10.0.0.0/8", "nope"], "10.0.0.0/8", {"a": "10.0.0.0/8"}, None, [],
    [10], [None], [["10.0.0.0/8"]], [""], ["fe80::1%eth0"], ["1.2.3.4/-1"], ["010.0.0.1"], ["1" * 100000],
    ["2001:db8::/129"], ["10.0.0.0/8 10.0.0.0/9"],
    [f"10.0.{i // 256}.{i % 256}" for i in range(rules.NETWORKS_MAX + 1)],
])
def test_whitelist_validation(alice, app, addresses):
    for method in (alice.post, alice.delete):
        answer = method(f"/v1/apps/{app}/whitelist/", {"addresses": addresses})
        assert answer.status_code == 400, (addresses, answer.content)
        assert "addresses" in answer.json()
    assert alice.get(f"/v1/apps/{app}/whitelist/").json() == {"addresses": []}


def test_whitelist_body_must_name_addresses(alice, app):
    assert alice.post(f"/v1/apps/{app}/whitelist/", {}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/whitelist/", {"address": ["10.0.0.0/8"]}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/whitelist/", ["10.0.0.0/8"]).status_code == 400
    # What JSON carries but no address is: the parser answers 400 before the view.
    raw = json.dumps({"addresses": ["\ud800", "10.0.0.0/8\u0000"]})
    assert alice.generic("POST", f"/v1/apps/{app}/whitelist/", raw).status_code == 400
    form = alice.generic("POST", f"/v1/apps/{app}/whitelist/", "addresses=10.0.0.0%2F8",
                         content_type="application/x-www-form-urlencoded")
    assert form.status_code == 400 and "addresses" in form.json()
    assert alice.get(f"/v1/apps/{app}/whitelist/").json() == {"addresses": []}


def test_an_app_allows_at_most_100_addresses(alice, app):
    path = f"/v1/apps/{app}/whitelist/"
    first = [f"10.0.0.{i}" for i in range(60)]
    assert alice.post(path, {"addresses": first}).status_code == 201
    answer = alice.post(path, {"addresses": [f"10.0.1.{i}" for i in range(41)]})
    assert answer.status_code == 400 and "at most 100" in str(answer.json())
    assert len(alice.get(path).json()["addresses"]) == 60
    # Those already there do not count twice.
    answer = alice.post(path, {"addresses": [*first[:10], *(f"10.0.1.{i}" for i in range(40))]})
    assert answer.status_code == 201 and len(answer.json()["addresses"]) == 100


def test_rules_normalise_networks():
    assert rules.normal_network(" 10.1.2.3/8 ") == "10.0.0.0/8"
    assert rules.normal_network("203.0.113.7") == "203.0.113.7/32"
    assert rules.normal_network("10.0.0.0/255.255.0.0") == "10.0.0.0/16"
    assert rules.normal_network("2001:DB8::1/32") == "2001:db8::/32"
    assert rules.network_problem("0.0.0.0/0") is None
    for bad in ("10.0.0.0/33", "nope", "", None, 7, "fe80::1%eth0", "x" * 1000):
        assert rules.network_problem(bad), bad
        with pytest.raises(ValueError):
            rules.normal_network(bad)
    assert "x" * 100 not in rules.network_problem("x" * 1000)  # long input is not echoed


# --- who may -------------------------------------------------------------------------------------

def test_collaborators_and_admins_may_others_may_not(alice, bob, admin_client, app, routed):
    carol = make_user("carol")
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "carol"}).status_code == 201
    assert carol.post(f"/v1/apps/{app}/settings", {"maintenance": True}).status_code == 201
    assert carol.post(f"/v1/apps/{app}/whitelist", {"addresses": ["10.0.0.0/8"]}).status_code == 201
    assert admin_client.get(f"/v1/apps/{app}/whitelist").json() == {"addresses": ["10.0.0.0/8"]}
    assert admin_client.post(f"/v1/apps/{app}/settings", {"maintenance": False}).status_code == 201
    assert admin_client.post(f"/v1/apps/{app}/settings", {"maintenance": True}).json()["owner"] == "root"
    before, calls = route(app), len(routed)
    for method, path, body in [
        ("get", "settings", None), ("post", "settings", {"maintenance": False}),
        ("post", "settings", {"whitelist": []}), ("get", "whitelist", None),
        ("post", "whitelist", {"addresses": ["0.0.0.0/0"]}), ("delete", "whitelist", {"addresses": ["10.0.0.0/8"]}),
    ]:
        args = (f"/v1/apps/{app}/{path}/",) if body is None else (f"/v1/apps/{app}/{path}/", body)
        answer = getattr(bob, method)(*args)
        assert answer.status_code == 403 and "alice" in answer.json()["detail"], (method, path, answer.content)
        assert getattr(bob, method)(*((f"/v1/apps/nosuch/{path}/",) + args[1:])).status_code == 404
    assert route(app) == before and len(routed) == calls
    assert before.maintenance is True and before.allow == ["10.0.0.0/8"]


def test_anonymous_is_refused(anon, app):
    assert anon.get(f"/v1/apps/{app}/settings/").status_code == 401
    assert anon.post(f"/v1/apps/{app}/whitelist/", {"addresses": ["10.0.0.0/8"]}).status_code == 401


def test_a_collaborator_leaving_keeps_the_settings(alice, app):
    carol = make_user("carol")
    alice.post(f"/v1/apps/{app}/perms", {"username": "carol"})
    carol.post(f"/v1/apps/{app}/settings", {"maintenance": True})
    assert alice.delete(f"/v1/apps/{app}/perms/carol").status_code == 204
    assert carol.delete("/v1/auth/cancel").status_code == 204
    body = alice.get(f"/v1/apps/{app}/settings").json()
    assert body["maintenance"] is True and body["owner"] is None


# --- routes ---------------------------------------------------------------------------------------

def test_the_deployers_switch_carries_the_settings(alice, app, routed):
    alice.post(f"/v1/apps/{app}/settings", {"maintenance": True})
    alice.post(f"/v1/apps/{app}/whitelist", {"addresses": ["10.0.0.0/8"]})
    held = App.objects.get(id=app)  # as a rollout holds it, for minutes
    runtime.route_for(held, [])
    endpoints = [Endpoint(app=app, type="web", num=1, address="172.17.0.9", port=5000)]
    runtime.switch_for(held)(endpoints)
    sent = routed[-1][0][app]
    assert sent.upstreams == [("172.17.0.9", 5000)] and sent.maintenance is True and sent.allow == ["10.0.0.0/8"]
    # A change made meanwhile is what the next switch sends (the app object is not a cache).
    alice.post(f"/v1/apps/{app}/settings", {"maintenance": False})
    runtime.switch_for(held)(endpoints)
    assert routed[-1][0][app].maintenance is False


def test_refresh_routes_carries_every_apps_settings(alice, bob, app, routed):
    assert bob.post("/v1/apps", {"id": "bobs"}).status_code == 201
    alice.post(f"/v1/apps/{app}/whitelist", {"addresses": ["192.0.2.0/24"]})
    runtime.refresh_routes()
    changes, options = routed[-1]
    assert options == {"keep_upstreams": True, "remove_others": True}
    assert changes[app].allow == ["192.0.2.0/24"] and changes[app].maintenance is False
    assert changes["bobs"].allow == [] and changes["bobs"].maintenance is False


def test_an_app_without_a_settings_row_routes_as_before(alice, app):
    AppSettings.objects.filter(app__id=app).delete()  # as an app made by hand, or a row lost
    assert route(app).maintenance is False and route(app).allow == []
    assert alice.get(f"/v1/apps/{app}/whitelist").json() == {"addresses": []}
    assert alice.post(f"/v1/apps/{app}/settings", {"maintenance": True}).status_code == 201
    assert route(app).maintenance is True


def test_settings_go_with_the_app(alice, app):
    assert AppSettings.objects.filter(app__id=app).count() == 1
    alice.post(f"/v1/apps/{app}/settings", {"maintenance": True})
    assert alice.delete(f"/v1/apps/{app}").status_code == 204
    assert not AppSettings.objects.filter(app__id=app).exists()
    assert alice.post("/v1/apps", {"id": app}).status_code == 201
    assert alice.get(f"/v1/apps/{app}/settings").json()["maintenance"] is False


def test_the_migration_gives_existing_apps_settings(alice, app):
    from importlib import import_module

    from django.apps import apps as django_apps

    migration = import_module("deis.controller.api.migrations.0005_appsettings")
    AppSettings.objects.all().delete()
    migration.settings_for_existing_apps(django_apps, None)
    migration.settings_for_existing_apps(django_apps, None)  # again: nothing doubled
    row = AppSettings.objects.get(app__id=app)
    assert row.maintenance is False and row.whitelist == [] and row.owner.username == "alice"
