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


def test_memory_units_and_unset(alice, app, settings):
    settings.MAX_MEMORY = 4 << 30
    for unit in ("6291456B", "8192K", "8192KB", "256M", "256mb", "1G", "2GB"):
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


# --- limits the engine would refuse are refused first (issue 11) --------------------------------

@pytest.mark.parametrize("memory, why", [
    ("1B", "below Docker's minimum of 6M"),
    ("4M", "below Docker's minimum of 6M"),
    ("6291455B", "below Docker's minimum of 6M"),
    ("99999999999999999999G", "more than this platform allows (4G)"),
    ("4097M", "more than this platform allows (4G)"),
    ("5G", "more than this platform allows (4G)"),
    ("1" + "0" * 30 + "G", "not valid"),
    ("-1G", "not valid"),
    ("1.5G", "not valid"),
    ("1TB", "not valid"),
])
def test_memory_outside_what_the_engine_takes_is_400(alice, app, settings, memory, why):
    settings.MAX_MEMORY = 4 << 30
    answer = alice.post(f"/v1/apps/{app}/config", {"memory": {"web": memory}})
    assert answer.status_code == 400, answer.content
    message = answer.json()["memory"][0]
    assert why in message and "from 6M to 4G" in message and "like 512M or 1G" in message, message
    assert versions(alice, app) == [(1, "alice created initial release")]


def test_memory_bounds_are_inclusive(alice, app, settings):
    settings.MAX_MEMORY = 4 << 30
    for memory in ("6M", "6291456B", "6144K", "4G", "4096MB"):
        answer = alice.post(f"/v1/apps/{app}/config", {"memory": {"web": memory}})
        assert answer.status_code == 201, (memory, answer.content)
    for memory in ("6291455B", f"{(4 << 30) + 1}B"):
        assert alice.post(f"/v1/apps/{app}/config", {"memory": {"web": memory}}).status_code == 400


@pytest.mark.parametrize("cpu", [1, 1025, 262144, -2, 1.5, True, "²", "٣", "1e3", "9" * 5000, [2]])
def test_cpu_shares_outside_what_the_engine_takes_is_400(alice, app, cpu):
    answer = alice.post(f"/v1/apps/{app}/config", {"cpu": {"web": cpu}})
    assert answer.status_code == 400, answer.content
    assert "from 2 to 1024 (0 for the default)" in answer.json()["cpu"][0]


def test_cpu_shares_bounds(alice, app):
    answer = alice.post(f"/v1/apps/{app}/config", {"cpu": {"web": 0, "worker": "2", "clock": 1024}})
    assert answer.status_code == 201, answer.content
    assert answer.json()["cpu"] == {"web": 0, "worker": 2, "clock": 1024}
    assert alice.post(f"/v1/apps/{app}/config", {"cpu": {"web": 1}}).status_code == 400  # Docker's minimum is 2


@pytest.mark.parametrize("body, why", [
    ({"values": {"A": "é" * 40000}}, "longer than 65536 bytes"),  # 40000 characters, 80000 bytes
    ({"values": json.dumps({"A": "\ud800"})}, "lone surrogates"),  # inside the v1 client's JSON string
    ({"values": json.dumps({"\udfff": "x"})}, "lone surrogates"),
    ({"values": json.dumps({"A": "x\u0000"})}, "NUL characters (\\u0000)"),
    ({"values": "[" * 100 + "]" * 100}, "nested more than 32 levels"),
    ({"values": "[" * 100000 + "]" * 100000}, "nested more than 32 levels"),
    ({"values": {"A=B": "x"}}, "not starting with a digit, at most 256 characters"),
    ({"values": {"A" * 257: "x"}}, "at most 256 characters"),
])
def test_config_the_environment_cannot_carry_is_400(alice, app, body, why):
    answer = alice.post(f"/v1/apps/{app}/config", body)
    assert answer.status_code == 400, answer.content
    field = next(iter(body))
    assert why in answer.json()[field][0], answer.json()
    assert versions(alice, app) == [(1, "alice created initial release")]


def test_config_count_and_size_are_capped_after_the_merge(alice, app, settings):
    settings.MAX_CONFIG_VALUES, settings.MAX_CONFIG_BYTES = 4, 4096
    assert alice.post(f"/v1/apps/{app}/config", {"values": {"A": "1", "B": "2", "C": "3"}}).status_code == 201
    refused = alice.post(f"/v1/apps/{app}/config", {"values": {"D": "4", "E": "5"}})
    assert refused.status_code == 400 and "at most 4 entries in values" in refused.json()["values"][0]
    # replacing and removing keep it within the cap
    assert alice.post(f"/v1/apps/{app}/config", {"values": {"A": None, "D": "4", "E": "5"}}).status_code == 201
    assert alice.post(f"/v1/apps/{app}/config", {"values": {"B": "x" * 3000}}).status_code == 201
    too_big = alice.post(f"/v1/apps/{app}/config", {"values": {"C": "y" * 2000}})
    assert too_big.status_code == 400 and "the limit is 4096 bytes" in too_big.json()["values"][0]
    assert alice.post(f"/v1/apps/{app}/config", {"memory": {f"t{n}": "64M" for n in range(5)}}).status_code == 400
    assert alice.get(f"/v1/apps/{app}/config").json()["values"] == {"B": "x" * 3000, "C": "3", "D": "4", "E": "5"}


@pytest.mark.parametrize("image", [
    "web::1", "web:", "web@", "web@sha256:abc", "Upper/Case:1", "registry.local//web", "web/",
    "web:" + "a" * 129, "a" * 256, "web_:1", "web..x:1", "registry.local:port/web:1",
])
def test_build_image_references_docker_refuses_are_400(alice, app, image):
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": image})
    assert answer.status_code == 400, answer.content
    assert "image" in answer.json()
    assert len(versions(alice, app)) == 1
    # what Docker takes still is
    for image in ["web:1", "registry.local/web:1.0", "registry.local:5000/team/web-app_x:v1.2-rc",
                  "web@sha256:" + "a" * 64, "web:1@sha256:" + "b" * 64, "a__b/c--d:_x", "Registry.Example.COM/web:1"]:
        assert alice.post(f"/v1/apps/{app}/builds", {"image": image}).status_code == 201, image


def test_names_with_a_trailing_newline_are_400(alice, app):
    """`$` in a pattern matches before a final newline: a type "web\\n" would name containers Docker refuses."""
    for body in ({"values": {"A\n": "x"}}, {"memory": {"web\n": "64M"}},
                 {"cpu": {"web\n": 2}}, {"tags": {"zone\n": "a"}}, {"tags": {"zone": "a\n"}}):
        answer = alice.post(f"/v1/apps/{app}/config", body)
        assert answer.status_code == 400, (body, answer.content)
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": "web:1", "procfile": {"web\n": "serve"}})
    assert answer.status_code == 400 and "not a valid process type" in answer.json()["procfile"][0]
    assert versions(alice, app) == [(1, "alice created initial release")]


@pytest.mark.parametrize("url", ["--upload-pack=touch /tmp/pwned", "https://example.com/bp.git#--output=/tmp/x",
                                 "ssh://git@example.com/bp.git", "https://exa mple.com/bp.git", "ext::sh -c id"])
def test_a_buildpack_url_that_could_inject_git_options_is_refused(alice, app, url):
    before = alice.get(f"/v1/apps/{app}/config").json()["values"]
    answer = alice.post(f"/v1/apps/{app}/config", {"values": {"BUILDPACK_URL": url}})
    assert answer.status_code == 400, answer.content
    assert "BUILDPACK_URL" in answer.json()["values"][0]
    assert alice.get(f"/v1/apps/{app}/config").json()["values"] == before


def test_a_good_buildpack_url_is_accepted(alice, app):
    for url in ("https://github.com/heroku/heroku-buildpack-python.git#v200", "heroku/python", "python"):
        assert alice.post(f"/v1/apps/{app}/config", {"values": {"BUILDPACK_URL": url}}).status_code == 201
