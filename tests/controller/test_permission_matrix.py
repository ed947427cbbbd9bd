"""Every endpoint for anonymous, another user, a collaborator, the owner and an admin.

`ok` means the caller got past the permission checks: any answer but 401, 403, 404 or 5xx
(except the runtime's documented 503). Each case runs on a fresh app, so destructive calls
(destroy, transfer, unshare) cannot mask one another.
"""

import json

import pytest
from django.conf import settings

from tests.pki import self_signed, ssh_public_key

from .conftest import Client, make_user

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "other", "collaborator", "owner", "admin"]
USE = {"anonymous": 401, "other": 403, "collaborator": "ok", "owner": "ok", "admin": "ok"}
MANAGE = {"anonymous": 401, "other": 403, "collaborator": 403, "owner": "ok", "admin": "ok"}
ANY_USER = {"anonymous": 401, "other": "ok", "collaborator": "ok", "owner": "ok", "admin": "ok"}
ADMIN = {"anonymous": 401, "other": 403, "collaborator": 403, "owner": 403, "admin": "ok"}
PUBLIC = {role: "ok" for role in ROLES}
BUILDER_ONLY = {role: 401 for role in ROLES}

A = "/v1/apps/shared-app"
ENDPOINTS = [
    ("GET", "/v1/", None, ANY_USER),
    ("GET", "/v1/apps", None, ANY_USER),
    ("POST", "/v1/apps", {"id": "fresh-app"}, ANY_USER),
    ("GET", A, None, USE),
    ("POST", A, {"owner": "other"}, MANAGE),
    ("DELETE", A, None, MANAGE),
    ("POST", f"{A}/scale", {"web": 1}, USE),
    ("GET", f"{A}/logs", None, USE),
    ("GET", f"{A}/metrics", None, USE),
    ("POST", f"{A}/run", {"command": "ls"}, USE),
    ("GET", f"{A}/containers", None, USE),
    ("GET", f"{A}/containers/web", None, USE),
    ("GET", f"{A}/containers/web/1", None, USE),
    ("POST", f"{A}/containers/restart", None, USE),
    ("POST", f"{A}/containers/web/restart", None, USE),
    ("POST", f"{A}/containers/web/1/restart", None, USE),
    ("GET", f"{A}/perms", None, USE),
    ("POST", f"{A}/perms", {"username": "other"}, MANAGE),
    ("DELETE", f"{A}/perms/collaborator", None, MANAGE),
    ("GET", f"{A}/config", None, USE),
    ("POST", f"{A}/config", {"values": {"K": "v"}}, USE),
    ("GET", f"{A}/builds", None, USE),
    ("POST", f"{A}/builds", {"image": "web:2"}, USE),
    ("GET", f"{A}/builds/BUILD", None, USE),
    ("GET", f"{A}/releases", None, USE),
    ("GET", f"{A}/releases/v1", None, USE),
    ("POST", f"{A}/releases/rollback", {"version": 2}, USE),
    ("GET", f"{A}/domains", None, USE),
    ("POST", f"{A}/domains", {"domain": "new.example.com"}, USE),
    ("DELETE", f"{A}/domains/old.example.com", None, USE),
    ("GET", "/v1/keys", None, ANY_USER),
    ("POST", "/v1/keys", "KEY", ANY_USER),
    ("GET", "/v1/certs", None, ANY_USER),
    ("POST", "/v1/certs", "CERT", ANY_USER),
    ("GET", "/v1/users/", None, ADMIN),
    ("GET", "/v1/metrics", None, ADMIN),
    ("GET", "/v1/admin/perms", None, ADMIN),
    ("POST", "/v1/admin/perms", {"username": "other"}, ADMIN),
    ("DELETE", "/v1/admin/perms/root2", None, ADMIN),
    ("POST", "/v1/auth/tokens/", {}, ANY_USER),
    ("POST", "/v1/auth/passwd", "PASSWD", ANY_USER),
    ("DELETE", "/v1/auth/cancel", None, {"anonymous": 401, "other": "ok", "collaborator": "ok",
                                        "owner": 409, "admin": "ok"}),
    ("POST", "/v1/auth/register", {"username": "newcomer", "password": "Newc0mer-pass"}, PUBLIC),
    ("POST", "/v1/auth/login/", {"username": "other", "password": "pw-other"}, PUBLIC),
    ("GET", "/healthz", None, PUBLIC),
    ("POST", "/v1/hooks/push", {"sha": "abcdef1", "fingerprint": "x", "receive_user": "owner",
                                "receive_repo": "shared-app"}, BUILDER_ONLY),
    ("POST", "/v1/hooks/config", {"receive_user": "owner", "receive_repo": "shared-app"}, BUILDER_ONLY),
    ("POST", "/v1/hooks/build", {"receive_user": "owner", "receive_repo": "shared-app", "image": "x:1"},
     BUILDER_ONLY),
]


@pytest.fixture
def world(db):
    """An app owned by `owner`, shared with `collaborator`, with a build, a domain and a second admin."""
    clients = {"admin": make_user("root", admin=True), "owner": make_user("owner"),
               "collaborator": make_user("collaborator"), "other": make_user("other"), "anonymous": Client()}
    make_user("root2", admin=True)
    owner = clients["owner"]
    assert owner.post("/v1/apps", {"id": "shared-app"}).status_code == 201
    owner.post(f"{A}/perms", {"username": "collaborator"})
    build = owner.post(f"{A}/builds", {"image": "web:1", "procfile": {"web": "serve"}}).json()
    owner.post(f"{A}/domains", {"domain": "old.example.com"})
    return clients, build["uuid"]


def body_for(marker, role):
    if marker == "KEY":
        return {"id": "k", "public": ssh_public_key()}
    if marker == "CERT":
        cert, key, _ = self_signed(f"{role}.example.com")
        return {"certificate": cert, "key": key}
    if marker == "PASSWD":
        return {"password": f"pw-{role}", "new_password": "Changed-pass-42"}
    return marker


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, path, body, expected", ENDPOINTS,
                         ids=[f"{m} {p.replace('/v1/apps/shared-app', '{app}')}" for m, p, _, _ in ENDPOINTS])
def test_permission_matrix(world, role, method, path, body, expected):
    clients, build_uuid = world
    client = clients[role]
    answer = client.generic(method, path.replace("BUILD", build_uuid),
                            "" if body is None else json.dumps(body_for(body, role)))
    want = expected[role]
    if want == "ok":
        assert answer.status_code not in (401, 403, 404), (answer.status_code, answer.content)
        assert answer.status_code < 500 or (answer.status_code == 503 and b"runtime" in answer.content), \
            answer.content
    else:
        assert answer.status_code == want, (answer.status_code, answer.content)


@pytest.mark.parametrize("role", ["other", "collaborator", "owner", "admin"])
def test_builder_key_opens_the_hooks_for_users_with_access(world, role):
    clients, _ = world
    builder = Client()
    builder.credentials(HTTP_X_DEIS_BUILDER_AUTH=settings.BUILDER_KEY)
    answer = builder.post("/v1/hooks/config", {"receive_user": clients[role].user.username,
                                                "receive_repo": "shared-app"})
    assert answer.status_code == (403 if role == "other" else 200), answer.content
