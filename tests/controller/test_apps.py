import re

import pytest
from django.test import override_settings

from deis.controller.api.models import App

pytestmark = pytest.mark.django_db


def test_create_with_generated_two_word_name(alice):
    answer = alice.post("/v1/apps", {})
    assert answer.status_code == 201
    body = answer.json()
    assert re.match(r"^[a-z]+-[a-z]+$", body["id"])
    assert body["owner"] == "alice" and body["url"] == f"{body['id']}.localhost"
    assert set(body) >= {"uuid", "id", "owner", "url", "structure", "created", "updated"}
    releases = alice.get(f"/v1/apps/{body['id']}/releases").json()
    assert [r["version"] for r in releases["results"]] == [1]
    assert releases["results"][0]["build"] is None


@override_settings(PLATFORM_DOMAIN="deis.example.org")
def test_url_uses_platform_domain(alice, app):
    assert alice.get(f"/v1/apps/{app}").json()["url"] == "web-shop.deis.example.org"


@pytest.mark.parametrize("name, reason", [
    ("Upper", "not a valid app name"), ("1abc", "not a valid app name"), ("a_b", "not a valid app name"),
    ("ab-", "not a valid app name"), ("a--b", "not a valid app name"), ("a" * 64, "at most 63"),
    ("deis", "reserved"), ("controller", "reserved"), ("", "blank"),
])
def test_create_rejects_bad_names(alice, name, reason):
    answer = alice.post("/v1/apps", {"id": name})
    assert answer.status_code == 400
    assert reason in str(answer.json())


def test_create_rejects_taken_name_and_unknown_fields(alice, bob, app):
    taken = bob.post("/v1/apps", {"id": app})
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    assert alice.post("/v1/apps", {"id": "other", "owner": "bob"}).status_code == 400


def test_list_shows_owned_and_shared_and_all_for_admin(alice, bob, admin_client, app):
    bob.post("/v1/apps", {"id": "bobs-app"})
    assert [a["id"] for a in alice.get("/v1/apps").json()["results"]] == [app]
    alice.post(f"/v1/apps/{app}/perms", {"username": "bob"})
    assert [a["id"] for a in bob.get("/v1/apps").json()["results"]] == ["bobs-app", app]
    assert admin_client.get("/v1/apps").json()["count"] == 2


def test_list_is_paginated_100_a_page(alice):
    for n in range(105):
        App.objects.create(id=f"app-{n:03d}", owner=alice.user)
    first = alice.get("/v1/apps").json()
    assert first["count"] == 105 and len(first["results"]) == 100 and first["next"] and first["previous"] is None
    second = alice.get(first["next"].replace("http://testserver", "")).json()
    assert len(second["results"]) == 5 and second["next"] is None


def test_info_unknown_and_forbidden(alice, bob, app):
    assert alice.get(f"/v1/apps/{app}").json()["id"] == app
    missing = alice.get("/v1/apps/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    forbidden = bob.get(f"/v1/apps/{app}")
    assert forbidden.status_code == 403 and "ask its owner, alice" in forbidden.json()["detail"]


def test_transfer(alice, bob, admin_client, app):
    assert bob.post(f"/v1/apps/{app}", {"owner": "bob"}).status_code == 403
    assert alice.post(f"/v1/apps/{app}", {"owner": "ghost"}).status_code == 404
    answer = alice.post(f"/v1/apps/{app}", {"owner": "bob"})
    assert answer.status_code == 200 and answer.json()["owner"] == "bob"
    assert alice.get(f"/v1/apps/{app}").status_code == 403
    assert admin_client.post(f"/v1/apps/{app}", {"owner": "alice"}).status_code == 200


def test_destroy_removes_everything(alice, bob, app):
    alice.post(f"/v1/apps/{app}/domains", {"domain": "shop.example.com"})
    alice.post(f"/v1/apps/{app}/config", {"values": {"A": "1"}})
    alice.post(f"/v1/apps/{app}/perms", {"username": "bob"})
    assert bob.delete(f"/v1/apps/{app}").status_code == 403
    assert alice.delete(f"/v1/apps/{app}").status_code == 204
    assert alice.get(f"/v1/apps/{app}").status_code == 404
    # the domain is free again
    alice.post("/v1/apps", {"id": "new-shop"})
    assert alice.post("/v1/apps/new-shop/domains", {"domain": "shop.example.com"}).status_code == 201


def test_runtime_endpoints_answer_503_with_reason_after_validation(alice, app):
    assert alice.post(f"/v1/apps/{app}/scale", {"web": 1}).status_code == 400  # no build yet
    alice.post(f"/v1/apps/{app}/builds", {"image": "example/web:1", "procfile": {"web": "serve", "worker": "w"}})
    unknown = alice.post(f"/v1/apps/{app}/scale", {"db": 1})
    assert unknown.status_code == 400 and "Unknown process type" in unknown.json()["detail"]
    assert alice.post(f"/v1/apps/{app}/scale", {"web": -1}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/scale", {"web": "many"}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/scale", []).status_code == 400
    for answer in (alice.post(f"/v1/apps/{app}/scale", {"web": 2, "worker": "1"}),
                   alice.get(f"/v1/apps/{app}/logs"),
                   alice.get(f"/v1/apps/{app}/logs?log_lines=5"),
                   alice.post(f"/v1/apps/{app}/run", {"command": "ls"}),
                   alice.get(f"/v1/apps/{app}/containers"),
                   alice.get(f"/v1/apps/{app}/containers/web"),
                   alice.get(f"/v1/apps/{app}/containers/web/1"),
                   alice.post(f"/v1/apps/{app}/containers/restart"),
                   alice.post(f"/v1/apps/{app}/containers/web/1/restart")):
        assert answer.status_code == 503, answer.content
        assert "No container runtime" in answer.json()["detail"]
    # a refused scale records nothing (the first build's defaults stay)
    assert alice.get(f"/v1/apps/{app}").json()["structure"] == {"web": 1, "worker": 0}
    assert alice.get(f"/v1/apps/{app}/logs?log_lines=0").status_code == 400
    assert alice.post(f"/v1/apps/{app}/run", {}).status_code == 400


def test_image_without_procfile_has_cmd_type(alice, app):
    alice.post(f"/v1/apps/{app}/builds", {"image": "example/web:1"})
    assert alice.post(f"/v1/apps/{app}/scale", {"web": 1}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/scale", {"cmd": 1}).status_code == 503


def test_sharing(alice, bob, admin_client, app):
    from .conftest import make_user

    carol = make_user("carol")
    assert alice.get(f"/v1/apps/{app}/perms").json() == {"users": []}
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "bob"}).status_code == 201
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "bob"}).status_code == 409
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "alice"}).status_code == 400
    assert alice.post(f"/v1/apps/{app}/perms", {"username": "ghost"}).status_code == 404
    assert alice.get(f"/v1/apps/{app}/perms").json() == {"users": ["bob"]}
    # collaborators use the app but do not manage sharing, destroy or transfer
    assert bob.post(f"/v1/apps/{app}/config", {"values": {"X": "1"}}).status_code == 201
    assert bob.post(f"/v1/apps/{app}/perms", {"username": "carol"}).status_code == 403
    assert bob.delete(f"/v1/apps/{app}/perms/bob").status_code == 403
    assert bob.delete(f"/v1/apps/{app}").status_code == 403
    assert bob.post(f"/v1/apps/{app}", {"owner": "bob"}).status_code == 403
    assert carol.get(f"/v1/apps/{app}/perms").status_code == 403
    assert admin_client.post(f"/v1/apps/{app}/perms", {"username": "carol"}).status_code == 201
    assert alice.delete(f"/v1/apps/{app}/perms/carol").status_code == 204
    assert alice.delete(f"/v1/apps/{app}/perms/carol").status_code == 404
    assert carol.get(f"/v1/apps/{app}").status_code == 403


def test_field_errors_are_flat_lists(alice, app):
    assert alice.post("/v1/apps", {"id": "Bad"}).json()["id"][0].startswith("'Bad' is not a valid app name")
    answer = alice.post(f"/v1/apps/{app}/domains", {"domain": "nodot"}).json()
    assert list(answer) == ["domain"] and len(answer["domain"]) == 1
    assert answer["domain"][0].startswith("'nodot' is not a valid host name: use labels of 1 to 63")
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": "x", "procfile": {"Bad!": "x"}}).json()
    assert isinstance(answer["procfile"], list) and "not a valid process type" in answer["procfile"][0]


# --- scale: whole numbers within the process quotas (issue 11) ----------------------------------

@pytest.fixture
def built(alice, app):
    alice.post(f"/v1/apps/{app}/builds", {"image": "example/web:1", "procfile": {"web": "serve", "worker": "w"}})
    return app


@pytest.mark.parametrize("count", [-1, 1e30, 2.0, "abc", True, False, None, "1e3", "-1", "²", "٣", "9" * 5000,
                                   10 ** 30, [1], {"n": 1}, ""])
def test_scale_counts_that_are_not_whole_numbers_are_400(alice, built, count):
    answer = alice.post(f"/v1/apps/{built}/scale", {"web": count})
    assert answer.status_code == 400, answer.content
    assert "The count must be a whole number from 0 to 100, like 2" in answer.json()["web"][0]
    assert alice.get(f"/v1/apps/{built}").json()["structure"] == {"web": 1, "worker": 0}


def test_scale_beyond_the_app_quota_is_403_before_anything_runs(alice, built, settings):
    refused = alice.post(f"/v1/apps/{built}/scale", {"web": 101})
    assert refused.status_code == 403, refused.content
    assert refused.json()["detail"] == ("Cannot scale web-shop to 101 processes: an app may run at most 100 "
                                        "(all process types together; DEIS_MAX_PROCESSES_PER_APP).")
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 60, "worker": 41}).status_code == 403
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 1000}).status_code == 403
    assert alice.get(f"/v1/apps/{built}").json()["structure"] == {"web": 1, "worker": 0}
    # within the quota, the request goes on (to the runtime, absent here)
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 60, "worker": 40}).status_code == 503
    settings.MAX_PROCESSES_PER_APP = 3
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 4}).status_code == 403
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 3}).status_code == 503


def test_scale_beyond_the_owners_quota_counts_all_their_apps(alice, bob, built, settings):
    settings.MAX_PROCESSES_PER_USER = 10
    alice.post("/v1/apps", {"id": "other-app"})
    App.objects.filter(id="other-app").update(structure={"web": 6, "worker": 2})
    bob.post("/v1/apps", {"id": "bobs-app"})
    App.objects.filter(id="bobs-app").update(structure={"web": 50})  # another owner's apps do not count
    refused = alice.post(f"/v1/apps/{built}/scale", {"web": 2, "worker": 1})
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("Cannot scale web-shop to 3 processes: its owner's apps would run 11, and "
                                        "one user's apps may run at most 10 (DEIS_MAX_PROCESSES_PER_USER).")
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 2}).status_code == 503  # 10 in all
    # a collaborator's scale counts against the owner
    alice.post(f"/v1/apps/{built}/perms", {"username": "bob"})
    assert bob.post(f"/v1/apps/{built}/scale", {"worker": 2}).status_code == 403


def test_scaling_down_is_allowed_over_a_lowered_quota(alice, built, settings):
    App.objects.filter(id=built).update(structure={"web": 150, "worker": 0})
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 120}).status_code == 503  # fewer than before: not refused
    assert alice.post(f"/v1/apps/{built}/scale", {"web": 150}).status_code == 503  # no more than before
    assert alice.post(f"/v1/apps/{built}/scale", {"worker": 1}).status_code == 403


# --- names the router and the engine take -------------------------------------------------------

LONGEST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57, "com"])  # 253 characters


def test_domains_are_host_names_the_router_serves(alice, app):
    assert len(LONGEST) == 253
    for domain in [LONGEST + "m", "x" + LONGEST, "a" * 64 + ".com", "example.com..", "a..b.com", ".example.com",
                   "*", "*.com", "a.*.example.com", "*a.example.com", "**.example.com", "-a.example.com",
                   "a-.example.com", "a_b.example.com", "bücher.example", "exa mple.com", "example.123", "10.0.0.1",
                   "example.com/x", "example.com:80", "*.*.example.com"]:
        answer = alice.post(f"/v1/apps/{app}/domains", {"domain": domain})
        assert answer.status_code == 400, (domain, answer.content)
        assert "domain" in answer.json()
    assert alice.get(f"/v1/apps/{app}/domains").json()["count"] == 0
    for domain in [LONGEST, "*.example.com", "xn--bcher-kva.example", "a.b", "1a.example.com", "a-b.c-d.example",
                   "*." + LONGEST[2:]]:
        answer = alice.post(f"/v1/apps/{app}/domains", {"domain": domain})
        assert answer.status_code == 201, (domain, answer.content)
        assert answer.json()["domain"] == domain


def test_app_names_fit_the_platform_domain(alice, settings):
    settings.PLATFORM_DOMAIN = ".".join(["p" * 63, "q" * 63, "r" * 63, "example"])  # 199 characters
    answer = alice.post("/v1/apps", {"id": "a" * 60})
    assert answer.status_code == 400 and "at most 53 characters here" in answer.json()["id"][0]
    assert alice.post("/v1/apps", {"id": "a" * 53}).status_code == 201


def test_log_lines_that_are_not_a_count_are_400(alice, app):
    for lines in ["²", "٣", "9" * 5000, "-1", "1e3", "0", "10001"]:
        answer = alice.get(f"/v1/apps/{app}/logs", {"log_lines": lines})
        assert answer.status_code == 400 and "log_lines" in answer.json(), lines
