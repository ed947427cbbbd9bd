import pytest
from django.conf import settings

from .conftest import Client

pytestmark = pytest.mark.django_db

SHA = "060da68f654e75fac06dbedd1995d5f8ad9084db"


@pytest.fixture
def builder(db):
    client = Client()
    client.credentials(HTTP_X_DEIS_BUILDER_AUTH=settings.BUILDER_KEY)
    return client


def test_hooks_need_the_builder_key(anon, alice, app):
    body = {"receive_user": "alice", "receive_repo": app}
    assert anon.post("/v1/hooks/config", body).status_code == 401
    anon.credentials(HTTP_X_DEIS_BUILDER_AUTH="wrong")
    assert anon.post("/v1/hooks/config", body).status_code == 401
    # a user token is not a builder key
    assert alice.post("/v1/hooks/config", body).status_code == 401


def test_push_config_and_build_hooks(builder, alice, bob, app):
    alice.post(f"/v1/apps/{app}/config", {"values": {"GREETING": "hi"}})
    push = builder.post("/v1/hooks/push", {
        "sha": SHA, "fingerprint": "aa:bb", "receive_user": "alice", "receive_repo": app,
        "ssh_connection": "127.0.0.1 5000 127.0.0.1 2222", "ssh_original_command": f"git-receive-pack '{app}.git'"})
    assert push.status_code == 201, push.content
    config = builder.post("/v1/hooks/config", {"receive_user": "alice", "receive_repo": app})
    assert config.status_code == 200 and config.json()["values"] == {"GREETING": "hi"}
    build = builder.post("/v1/hooks/build", {
        "receive_user": "alice", "receive_repo": app, "sha": SHA, "image": f"{app}:git-060da68",
        "procfile": {"web": "gunicorn app:app"}, "dockerfile": ""})
    assert build.status_code == 200, build.content
    assert build.json()["release"] == {"version": 3}
    release = alice.get(f"/v1/apps/{app}/releases/v3").json()
    assert release["summary"] == "alice deployed 060da68"
    assert alice.get(f"/v1/apps/{app}/config").json()["values"] == {"GREETING": "hi"}


def test_hooks_refuse_users_without_access_and_unknown_apps(builder, alice, bob, app):
    denied = builder.post("/v1/hooks/config", {"receive_user": "bob", "receive_repo": app})
    assert denied.status_code == 403 and "ask its owner, alice" in denied.json()["detail"]
    assert builder.post("/v1/hooks/config", {"receive_user": "ghost", "receive_repo": app}).status_code == 404
    assert builder.post("/v1/hooks/config", {"receive_user": "alice", "receive_repo": "nope"}).status_code == 404
    alice.post(f"/v1/apps/{app}/perms", {"username": "bob"})
    assert builder.post("/v1/hooks/config", {"receive_user": "bob", "receive_repo": app}).status_code == 200
    bad = builder.post("/v1/hooks/build", {"receive_user": "alice", "receive_repo": app, "image": "x",
                                           "procfile": {"BAD TYPE": "x"}})
    assert bad.status_code == 400


def test_oversized_body_is_413(alice, app, settings):
    big = {"values": {"BIG": "x" * (settings.MAX_BODY_BYTES + 10)}}
    answer = alice.post(f"/v1/apps/{app}/config", big)
    assert answer.status_code == 413 and "larger than the limit" in answer.json()["detail"]


def test_malformed_json_is_400(alice, app):
    answer = alice.generic("POST", f"/v1/apps/{app}/config", "{not json")
    assert answer.status_code == 400 and "detail" in answer.json()
    answer = alice.generic("POST", f"/v1/apps/{app}/config", "[1, 2]")
    assert answer.status_code == 400
    answer = alice.generic("POST", "/v1/apps", '"a string"')
    assert answer.status_code == 400


def test_key_hook_names_the_owner_of_a_key(builder, alice, anon):
    from tests.pki import ssh_public_key

    added = alice.post("/v1/keys", {"id": "laptop", "public": ssh_public_key()})
    assert added.status_code == 201, added.content
    fingerprint = added.json()["fingerprint"]
    answer = builder.get(f"/v1/hooks/key/{fingerprint}")
    assert answer.status_code == 200
    assert answer.json() == {"username": "alice", "fingerprint": fingerprint, "id": "laptop"}
    assert builder.get(f"/v1/hooks/key/{fingerprint.upper()}").json()["username"] == "alice"
    missing = builder.get("/v1/hooks/key/00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff")
    assert missing.status_code == 404 and "keys:add" in missing.json()["detail"]
    assert anon.get(f"/v1/hooks/key/{fingerprint}").status_code == 401
    assert alice.get(f"/v1/hooks/key/{fingerprint}").status_code == 401


def test_build_hook_keeps_the_log_and_records_failed_builds_without_a_release(builder, alice, app):
    ok = builder.post("/v1/hooks/build", {
        "receive_user": "alice", "receive_repo": app, "sha": SHA, "image": f"{app}:git-060da68",
        "procfile": {"web": "run"}, "log": "-----> Python app detected\n       done\n"})
    assert ok.status_code == 200, ok.content
    failed = builder.post("/v1/hooks/build", {
        "receive_user": "alice", "receive_repo": app, "sha": "1" * 40, "failed": True,
        "log": "-----> Python app detected\n!     pip could not install flask==99\n"})
    assert failed.status_code == 201, failed.content
    uuid = failed.json()["build"]["uuid"]
    detail = alice.get(f"/v1/apps/{app}/builds/{uuid}").json()
    assert detail["failed"] is True and detail["image"] == "" and "flask==99" in detail["log"]
    builds = alice.get(f"/v1/apps/{app}/builds").json()["results"]
    assert [b["failed"] for b in builds] == [True, False] and "log" not in builds[0]
    assert alice.get(f"/v1/apps/{app}/builds/{builds[1]['uuid']}").json()["log"].startswith("-----> Python")
    # No release was made for the failed build: the newest is still the good one.
    assert alice.get(f"/v1/apps/{app}/releases").json()["results"][0]["summary"] == "alice deployed 060da68"
    missing_image = builder.post("/v1/hooks/build", {"receive_user": "alice", "receive_repo": app, "sha": SHA})
    assert missing_image.status_code == 400 and "image" in missing_image.json()


# --- every JSON body: bounded nesting, valid Unicode, no NUL (issue 11) --------------------------

def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


BODY_ENDPOINTS = ["/v1/apps", "/v1/apps/web-shop/config", "/v1/apps/web-shop/builds", "/v1/apps/web-shop/scale",
                  "/v1/apps/web-shop/domains", "/v1/apps/web-shop/perms", "/v1/apps/web-shop/run", "/v1/keys",
                  "/v1/certs", "/v1/auth/passwd", "/v1/auth/tokens", "/v1/apps/web-shop/releases/rollback"]


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
@pytest.mark.parametrize("body, why", [
    (_nested(33), "nested more than 32 levels deep"),
    ("[" * 50000 + "]" * 50000, "nested more than 32 levels deep"),
    ('{"values": {"A": "\\ud800"}}', "lone surrogates"),
    ('{"\\udc00": 1}', "lone surrogates"),
    ('{"id": "x\\ud83d"}', "lone surrogates"),
    ('{"values": {"A\\u0000": "x"}}', "NUL"),
    ('{"image": "web:1", "procfile": {"web": "run\\u0000"}}', "NUL"),
])
def test_json_bodies_the_platform_cannot_take_are_400(alice, app, path, body, why):
    answer = alice.generic("POST", path, body)
    assert answer.status_code == 400, answer.content
    assert why in answer.json()["detail"], answer.json()
    assert alice.get(f"/v1/apps/{app}/releases").json()["count"] == 1


def test_the_builder_hooks_parse_the_same_way(builder, alice, app):
    for body in (_nested(40), '{"receive_user": "alice", "receive_repo": "\\ud800"}',
                 '{"receive_user": "alice", "receive_repo": "web-shop", "image": "web:1", '
                 '"procfile": {"web": "a\\u0000b"}}'):
        for path in ("/v1/hooks/config", "/v1/hooks/build", "/v1/hooks/push"):
            answer = builder.generic("POST", path, body)
            assert answer.status_code == 400, (path, body[:60], answer.content)


def test_nesting_up_to_the_limit_is_parsed(alice, app, settings):
    answer = alice.generic("POST", f"/v1/apps/{app}/config", '{"values": ' + _nested(31) + "}")
    assert answer.status_code == 400 and "must be a string" in answer.json()["values"][0]  # parsed, then refused
    settings.MAX_JSON_DEPTH = 4
    answer = alice.generic("POST", f"/v1/apps/{app}/config", '{"values": ' + _nested(4) + "}")
    assert answer.status_code == 400 and "nested more than 4 levels" in answer.json()["detail"]
    ok = alice.generic("POST", f"/v1/apps/{app}/config", '{"values": {"A": "\\ud83d\\ude00 \\u00e9"}}')
    assert ok.status_code == 201 and ok.json()["values"] == {"A": "\U0001F600 é"}  # a surrogate pair is fine
