import pytest
from django.test import override_settings

from .conftest import make_user

pytestmark = pytest.mark.django_db


def test_register_first_user_becomes_admin_form_encoded(anon):
    answer = anon.post("/v1/auth/register", {"username": "first", "password": "pw", "email": "f@x.io"},
                       format="multipart")
    assert answer.status_code == 201
    assert answer.json()["is_superuser"] is True
    second = anon.post("/v1/auth/register", {"username": "second", "password": "pw"})
    assert second.status_code == 201 and second.json()["is_superuser"] is False
    assert "password" not in second.json()


def test_register_rejects_duplicates_and_bad_names(anon):
    assert anon.post("/v1/auth/register", {"username": "x", "password": "pw"}).status_code == 201
    dup = anon.post("/v1/auth/register", {"username": "x", "password": "pw"})
    assert dup.status_code == 400 and "already exists" in str(dup.json())
    bad = anon.post("/v1/auth/register", {"username": "no spaces", "password": "pw"})
    assert bad.status_code == 400 and "username" in bad.json()
    unknown = anon.post("/v1/auth/register", {"username": "y", "password": "pw", "is_superuser": True})
    assert unknown.status_code == 400 and "is_superuser" in unknown.json()


def test_registration_modes(admin_client, anon):
    with override_settings(REGISTRATION_MODE="disabled"):
        answer = anon.post("/v1/auth/register", {"username": "late", "password": "pw"})
        assert answer.status_code == 403 and "disabled" in answer.json()["detail"]
    with override_settings(REGISTRATION_MODE="admin_only"):
        assert anon.post("/v1/auth/register", {"username": "late", "password": "pw"}).status_code == 403
        assert admin_client.post("/v1/auth/register", {"username": "late", "password": "pw"}).status_code == 201


def test_first_user_may_register_even_when_disabled(anon):
    with override_settings(REGISTRATION_MODE="disabled"):
        assert anon.post("/v1/auth/register", {"username": "boss", "password": "pw"}).status_code == 201


def test_login_gives_token_and_401_on_bad_credentials(alice, anon):
    answer = anon.post("/v1/auth/login/", {"username": "alice", "password": "pw-alice"}, format="multipart")
    assert answer.status_code == 200 and len(answer.json()["token"]) >= 20
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "nope"}).status_code == 401
    assert anon.post("/v1/auth/login", {"username": "ghost", "password": "x"}).status_code == 401


def test_root_needs_token_and_answers_version_headers(anon, alice):
    answer = anon.get("/v1/")
    assert answer.status_code == 401
    assert answer["DEIS_API_VERSION"] == "1.5" and answer["DEIS_PLATFORM_VERSION"]
    assert alice.get("/v1/").status_code == 200


def test_healthz_without_auth(anon):
    answer = anon.get("/healthz")
    assert answer.status_code == 200 and answer.content == b"OK"


def test_bad_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="token not-a-real-token")
    assert anon.get("/v1/apps").status_code == 401


def test_passwd(alice, anon, admin_client):
    wrong = alice.post("/v1/auth/passwd", {"password": "bad", "new_password": "n1"})
    assert wrong.status_code == 400 and "wrong" in str(wrong.json())
    assert alice.post("/v1/auth/passwd", {"password": "pw-alice", "new_password": "n1"}).status_code == 200
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "n1"}).status_code == 200
    other = make_user("carol")
    assert other.post("/v1/auth/passwd", {"username": "alice", "new_password": "x"}).status_code == 403
    assert admin_client.post("/v1/auth/passwd", {"username": "alice", "new_password": "n2"}).status_code == 200
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "n2"}).status_code == 200


def test_tokens_regenerate_own_other_and_all(alice, bob, admin_client):
    old = alice._credentials["HTTP_AUTHORIZATION"]
    answer = alice.post("/v1/auth/tokens/", {})
    assert answer.status_code == 200
    assert alice.get("/v1/apps").status_code == 401  # the old token stopped working
    alice.credentials(HTTP_AUTHORIZATION=f"token {answer.json()['token']}")
    assert alice.get("/v1/apps").status_code == 200 and old != alice._credentials["HTTP_AUTHORIZATION"]
    assert alice.post("/v1/auth/tokens/", {"username": "bob"}).status_code == 403
    assert admin_client.post("/v1/auth/tokens/", {"username": "bob"}).status_code == 200
    assert bob.get("/v1/apps").status_code == 401
    everyone = admin_client.post("/v1/auth/tokens/", {"all": True})
    assert everyone.status_code == 200
    assert alice.get("/v1/apps").status_code == 401
    admin_client.credentials(HTTP_AUTHORIZATION=f"token {everyone.json()['token']}")
    assert admin_client.get("/v1/apps").status_code == 200


def test_cancel(alice, bob, admin_client, app):
    refused = alice.delete("/v1/auth/cancel")
    assert refused.status_code == 409 and "web-shop" in refused.json()["detail"]
    assert bob.delete("/v1/auth/cancel", {"username": "alice"}).status_code == 403
    assert bob.delete("/v1/auth/cancel").status_code == 204
    assert bob.get("/v1/apps").status_code == 401
    assert alice.delete(f"/v1/apps/{app}").status_code == 204
    assert admin_client.delete("/v1/auth/cancel", {"username": "alice"}).status_code == 204


def test_users_list_admin_only(alice, admin_client):
    assert alice.get("/v1/users/").status_code == 403
    answer = admin_client.get("/v1/users/")
    assert answer.status_code == 200
    names = [u["username"] for u in answer.json()["results"]]
    assert names == sorted(names) and "alice" in names
    assert {"username", "email", "is_superuser", "date_joined"} <= set(answer.json()["results"][0])


def test_admin_perms(alice, bob, admin_client):
    assert alice.get("/v1/admin/perms").status_code == 403
    assert alice.post("/v1/admin/perms", {"username": "bob"}).status_code == 403
    assert admin_client.post("/v1/admin/perms", {"username": "alice"}).status_code == 201
    listed = admin_client.get("/v1/admin/perms").json()
    assert {u["username"] for u in listed["results"]} == {"root", "alice"}
    assert alice.get("/v1/users/").status_code == 200
    assert admin_client.post("/v1/admin/perms", {"username": "ghost"}).status_code == 404
    assert admin_client.delete("/v1/admin/perms/alice").status_code == 204
    assert alice.get("/v1/users/").status_code == 403
    assert admin_client.delete("/v1/admin/perms/bob").status_code == 404
    last = admin_client.delete("/v1/admin/perms/root")
    assert last.status_code == 409
