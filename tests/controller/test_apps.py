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
    assert answer == {"domain": ["'nodot' is not a valid host name."]}
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": "x", "procfile": {"Bad!": "x"}}).json()
    assert isinstance(answer["procfile"], list) and "not a valid process type" in answer["procfile"][0]
