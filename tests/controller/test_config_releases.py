import json

import pytest

pytestmark = pytest.mark.django_db


def versions(client, app):
    return [(r["version"], r["summary"]) for r in client.get(f"/v1/apps/{app}/releases").json()["results"]]


def test_config_set_unset_and_release_summaries(alice, app):
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"FOO": "1", "BAR": "x"}})
    assert answer.status_code == 201 and answer["Deis-Release"] == "2"
    assert answer.json()["values"] == {"FOO": "1", "BAR": "x"}
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"FOO": "2", "BAZ": "new", "BAR": None}})
    assert answer["Deis-Release"] == "3"
    assert answer.json()["values"] == {"FOO": "2", "BAZ": "new"}
    assert versions(alice, app) == [
        (3, "alice added BAZ, changed FOO, deleted BAR"),
        (2, "alice added FOO, BAR"),
        (1, "alice created initial release"),
    ]
    got = alice.get(f"/v1/apps/{app}/config").json()
    assert got["values"] == {"FOO": "2", "BAZ": "new"} and got["app"] == app and got["owner"] == "alice"
    assert set(got) >= {"uuid", "memory", "cpu", "tags", "created", "updated"}


def test_config_accepts_json_strings_like_the_v1_client(alice, app):
    answer = alice.post(f"/v1/apps/{app}/config", {"values": json.dumps({"A": "b c=d"}),
                                                   "memory": json.dumps({"web": "512M"}),
                                                   "cpu": json.dumps({"web": "256"}),
                                                   "tags": json.dumps({"zone": "eu-1"})})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["values"] == {"A": "b c=d"} and body["memory"] == {"web": "512M"}
    assert body["cpu"] == {"web": 256} and body["tags"] == {"zone": "eu-1"}
    summary = versions(alice, app)[0][1]
    assert summary == "alice changed limits for memory, cpu, changed tags, added A"


@pytest.mark.parametrize("body, field", [
    ({"values": {"1BAD": "x"}}, "values"),
    ({"values": {"BAD-KEY": "x"}}, "values"),
    ({"values": {"K": {"nested": 1}}}, "values"),
    ({"values": "not json"}, "values"),
    ({"values": "[1, 2]"}, "values"),
    ({"memory": {"web": "lots"}}, "memory"),
    ({"memory": {"web": "512X"}}, "memory"),
    ({"memory": {"Web!": "512M"}}, "memory"),
    ({"cpu": {"web": 2048}}, "cpu"),
    ({"cpu": {"web": -1}}, "cpu"),
    ({"cpu": {"web": "half"}}, "cpu"),
    ({"tags": {"zone": "has space"}}, "tags"),
    ({"colour": {"A": "b"}}, "colour"),
    ({}, "detail"),
])
def test_config_validation(alice, app, body, field):
    answer = alice.post(f"/v1/apps/{app}/config", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    assert versions(alice, app) == [(1, "alice created initial release")]


def test_memory_units_and_unset(alice, app):
    for unit in ("1024B", "512K", "512KB", "256M", "256mb", "1G", "2GB"):
        assert alice.post(f"/v1/apps/{app}/config", {"memory": {"web": unit}}).status_code == 201
    assert alice.get(f"/v1/apps/{app}/config").json()["memory"] == {"web": "2GB"}
    alice.post(f"/v1/apps/{app}/config", {"memory": {"web": None}})
    assert alice.get(f"/v1/apps/{app}/config").json()["memory"] == {}


def test_non_string_values_are_stored_as_strings(alice, app):
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"N": 5, "F": 1.5, "B": True}})
    assert answer.json()["values"] == {"N": "5", "F": "1.5", "B": "true"}


def test_builds_make_releases_with_summary_and_header(alice, app):
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": "registry.local/web:1.0", "procfile": {"web": "serve"}})
    assert answer.status_code == 201 and answer["Deis-Release"] == "2"
    build = answer.json()
    assert build["image"] == "registry.local/web:1.0" and build["procfile"] == {"web": "serve"}
    listed = alice.get(f"/v1/apps/{app}/builds").json()
    assert listed["count"] == 1 and listed["results"][0]["uuid"] == build["uuid"]
    assert alice.get(f"/v1/apps/{app}/builds/{build['uuid']}").json()["image"] == "registry.local/web:1.0"
    assert versions(alice, app)[0] == (2, "alice deployed registry.local/web:1.0")
    release = alice.get(f"/v1/apps/{app}/releases/v2").json()
    assert release["build"] == build["uuid"]
    assert alice.get(f"/v1/apps/{app}/releases/v9").status_code == 404


@pytest.mark.parametrize("body", [
    {}, {"image": ""}, {"image": "bad image"}, {"image": "x", "procfile": {"Web!": "serve"}},
    {"image": "x", "procfile": {"web": ""}}, {"image": "x", "procfile": "web: serve"},
    {"image": "x", "extra": 1},
])
def test_build_validation(alice, app, body):
    assert alice.post(f"/v1/apps/{app}/builds", body).status_code == 400
    assert len(versions(alice, app)) == 1


def test_rollback(alice, app):
    alice.post(f"/v1/apps/{app}/builds", {"image": "web:1"})                 # v2
    alice.post(f"/v1/apps/{app}/config", {"values": {"GREETING": "hi"}})     # v3
    alice.post(f"/v1/apps/{app}/builds", {"image": "web:2"})                 # v4
    answer = alice.post(f"/v1/apps/{app}/releases/rollback", {})
    assert answer.status_code == 201 and answer.json() == {"version": 5}
    v5, v3 = (alice.get(f"/v1/apps/{app}/releases/v{n}").json() for n in (5, 3))
    assert (v5["build"], v5["config"]) == (v3["build"], v3["config"])
    assert v5["summary"] == "alice rolled back to v3"
    answer = alice.post(f"/v1/apps/{app}/releases/rollback", {"version": 2})
    assert answer.json() == {"version": 6}
    assert alice.get(f"/v1/apps/{app}/config").json()["values"] == {}
    assert alice.post(f"/v1/apps/{app}/releases/rollback", {"version": 99}).status_code == 400
    refused = alice.post(f"/v1/apps/{app}/releases/rollback", {"version": 1})
    assert refused.status_code == 400 and "no build" in refused.json()["detail"]
    assert alice.post(f"/v1/apps/{app}/releases/rollback", {"version": "two"}).status_code == 400


def test_rollback_with_nothing_before(alice, app):
    answer = alice.post(f"/v1/apps/{app}/releases/rollback", {})
    assert answer.status_code == 400 and "no earlier release" in answer.json()["detail"]


def test_domains_and_certificates_do_not_make_releases(alice, app):
    alice.post(f"/v1/apps/{app}/domains", {"domain": "www.example.com"})
    alice.post(f"/v1/apps/{app}/perms", {"username": "root"})
    assert len(versions(alice, app)) == 1
