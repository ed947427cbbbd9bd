"""In-process API fixtures: DRF's test client against the test database (SQLite or PostgreSQL)."""

import pytest
from rest_framework.test import APIClient


class Client(APIClient):
    """An API client logged in as one user by token, sending JSON by default."""

    def __init__(self, user=None, token=None):
        super().__init__()
        self.user = user
        if token:
            self.credentials(HTTP_AUTHORIZATION=f"token {token}")

    def generic(self, method, path, data="", content_type="application/json", **extra):
        return super().generic(method, path, data, content_type, **extra)

    def post(self, path, data=None, format="json", **extra):
        return super().post(path, data, format=format, **extra)

    def delete(self, path, data=None, format="json", **extra):
        return super().delete(path, data, format=format, **extra)


def make_user(username, admin=False):
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user(username=username, password="pw-" + username, email=f"{username}@x.io",
                                    is_superuser=admin, is_staff=admin)
    return Client(user, Token.objects.create(user=user).key)


@pytest.fixture
def admin_client(db):
    return make_user("root", admin=True)


@pytest.fixture
def alice(db, admin_client):
    return make_user("alice")


@pytest.fixture
def bob(db, admin_client):
    return make_user("bob")


@pytest.fixture
def anon(db):
    return Client()


@pytest.fixture
def app(alice):
    answer = alice.post("/v1/apps", {"id": "web-shop"})
    assert answer.status_code == 201, answer.content
    return "web-shop"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 is slow on purpose; in-process tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
