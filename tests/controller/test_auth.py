from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import override_settings

from deis.controller.api import accounts

from .conftest import make_user

pytestmark = pytest.mark.django_db


GOOD = "Corr3ct-horse-battery"  # a password the validators accept


def test_register_never_makes_an_admin_form_encoded(anon):
    answer = anon.post("/v1/auth/register", {"username": "first", "password": GOOD, "email": "f@x.io"},
                       format="multipart")
    assert answer.status_code == 201, answer.content
    assert answer.json()["is_superuser"] is False  # the first user is not an admin either
    assert "password" not in answer.json()
    second = anon.post("/v1/auth/register", {"username": "second", "password": GOOD})
    assert second.status_code == 201 and second.json()["is_superuser"] is False
    from django.contrib.auth.models import User
    assert not User.objects.filter(is_superuser=True).exists()


def test_register_rejects_duplicates_and_bad_names(anon):
    assert anon.post("/v1/auth/register", {"username": "x", "password": GOOD}).status_code == 201
    dup = anon.post("/v1/auth/register", {"username": "x", "password": GOOD})
    assert dup.status_code == 400 and "already exists" in str(dup.json())
    bad = anon.post("/v1/auth/register", {"username": "no spaces", "password": GOOD})
    assert bad.status_code == 400 and "username" in bad.json()
    unknown = anon.post("/v1/auth/register", {"username": "y", "password": GOOD, "is_superuser": True})
    assert unknown.status_code == 400 and "is_superuser" in unknown.json()


def test_registration_modes(admin_client, anon):
    with override_settings(REGISTRATION_MODE="disabled"):
        answer = anon.post("/v1/auth/register", {"username": "late", "password": GOOD})
        assert answer.status_code == 403 and "disabled" in answer.json()["detail"]
    with override_settings(REGISTRATION_MODE="admin_only"):
        assert anon.post("/v1/auth/register", {"username": "late", "password": GOOD}).status_code == 403
        assert admin_client.post("/v1/auth/register", {"username": "late", "password": GOOD}).status_code == 201


def test_first_user_may_not_register_when_disabled(anon):
    """No race to register first: on a fresh platform too, only the admin token's holder may."""
    with override_settings(REGISTRATION_MODE="disabled"):
        assert anon.post("/v1/auth/register", {"username": "boss", "password": GOOD}).status_code == 403


# --- password validators ---------------------------------------------------------------------

@pytest.mark.parametrize("password, message", [
    ("pw", "too short"), ("password123", "too common"), ("83749261730", "entirely numeric"),
    ("johnsmith1", "too similar"),
])
def test_register_applies_the_password_validators(anon, password, message):
    answer = anon.post("/v1/auth/register", {"username": "johnsmith", "password": password,
                                             "email": "john@x.io"})
    assert answer.status_code == 400 and message in " ".join(answer.json()["password"]), answer.json()
    from django.contrib.auth.models import User
    assert not User.objects.filter(username="johnsmith").exists()


def test_passwd_applies_the_password_validators(alice, admin_client, anon):
    short = alice.post("/v1/auth/passwd", {"password": "pw-alice", "new_password": "a"})
    assert short.status_code == 400 and "too short" in " ".join(short.json()["new_password"])
    common = admin_client.post("/v1/auth/passwd", {"username": "alice", "new_password": "qwerty123"})
    assert common.status_code == 400 and "too common" in " ".join(common.json()["new_password"])
    assert alice.get("/v1/apps").status_code == 200  # nothing changed
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "pw-alice"}).status_code == 200


# --- the first admin: the operator's, never a race ------------------------------------------

@pytest.fixture
def token_file(settings, tmp_path):
    settings.ADMIN_TOKEN_FILE = tmp_path / "admin_token"
    return settings.ADMIN_TOKEN_FILE


def issue(token_file) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("admin_token", stdout=out)
    return out.getvalue().strip()


def test_one_time_admin_token_makes_an_admin_once(anon, token_file):
    token = issue(token_file)
    assert len(token) >= 40
    assert token_file.stat().st_mode & 0o777 == 0o600 and token not in token_file.read_text()
    wrong = anon.post("/v1/auth/register", {"username": "eve", "password": GOOD, "admin_token": "guess"})
    assert wrong.status_code == 403 and "admin token" in wrong.json()["detail"]
    weak = anon.post("/v1/auth/register", {"username": "boss", "password": "pw", "admin_token": token})
    assert weak.status_code == 400  # a refused registration leaves the token usable
    boss = anon.post("/v1/auth/register", {"username": "boss", "password": GOOD, "admin_token": token},
                     format="multipart")
    assert boss.status_code == 201 and boss.json()["is_superuser"] is True
    assert not token_file.exists()
    again = anon.post("/v1/auth/register", {"username": "boss2", "password": GOOD, "admin_token": token})
    assert again.status_code == 403
    from django.contrib.auth.models import User
    assert set(User.objects.values_list("username", flat=True)) == {"boss"}
    assert issue(token_file) == "" and not token_file.exists()  # there is an admin: no more tokens


@pytest.mark.parametrize("mode", ["disabled", "admin_only"])
def test_admin_token_registers_whatever_the_registration_mode(anon, token_file, mode):
    token = issue(token_file)
    with override_settings(REGISTRATION_MODE=mode):
        assert anon.post("/v1/auth/register", {"username": "joe", "password": GOOD}).status_code == 403
        answer = anon.post("/v1/auth/register", {"username": "boss", "password": GOOD, "admin_token": token})
        assert answer.status_code == 201 and answer.json()["is_superuser"] is True


def test_a_new_admin_token_voids_the_previous_one(anon, token_file):
    old = issue(token_file)
    new = issue(token_file)
    assert anon.post("/v1/auth/register", {"username": "a1", "password": GOOD, "admin_token": old}).status_code == 403
    assert anon.post("/v1/auth/register", {"username": "a1", "password": GOOD, "admin_token": new}).status_code == 201


def test_admin_command_promotes_or_creates(alice, anon, token_file, monkeypatch):
    import io

    from django.contrib.auth.models import User
    from django.core.management import CommandError, call_command

    issue(token_file)
    out = io.StringIO()
    call_command("admin", "alice", stdout=out)
    assert "Promoted alice" in out.getvalue() and User.objects.get(username="alice").is_superuser
    assert alice.get("/v1/users/").status_code == 200
    assert not token_file.exists()  # an admin exists: the one-time token is void
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="too short"):
        call_command("admin", "newboss", stdout=out)
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
    call_command("admin", "newboss", "--email", "nb@x.io", stdout=out)
    assert User.objects.get(username="newboss").is_superuser
    assert anon.post("/v1/auth/login/", {"username": "newboss", "password": GOOD}).status_code == 200


def test_platform_admin_subcommand_and_admin_token(tmp_path):
    """`deis-platform admin NAME` (and `make admin USER=NAME`) on a data directory of its own."""
    import os
    import subprocess
    import sys

    from deis.platform import Controller, admin_token

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DEIS_DATA_DIR"] = str(tmp_path)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        controller = Controller(data_dir=tmp_path)
        controller.migrate()
        token = admin_token(controller)  # as `up` prints it while there is no admin
        assert token and (tmp_path / "admin_token").stat().st_mode & 0o777 == 0o600
        made = subprocess.run([sys.executable, "-m", "deis.platform", "admin", "boss"], env=env, text=True,
                              input=GOOD + "\n", capture_output=True)
        assert made.returncode == 0 and "Created boss" in made.stdout, made.stdout + made.stderr
        again = subprocess.run([sys.executable, "-m", "deis.platform", "admin", "boss"], env=env, text=True,
                               capture_output=True, stdin=subprocess.DEVNULL)
        assert again.returncode == 0 and "Promoted boss" in again.stdout, again.stdout + again.stderr
        assert admin_token(controller) is None and not (tmp_path / "admin_token").exists()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    root = Path(__file__).resolve().parents[2]
    plan = subprocess.run(["make", "-n", "-o", ".venv/.installed", "admin", "USER=boss"], cwd=root, capture_output=True, text=True)
    assert "-m deis.platform admin" in plan.stdout and "boss" in plan.stdout, plan.stdout + plan.stderr
    usage = subprocess.run(["make", "-s", "-o", ".venv/.installed", "admin"], cwd=root, capture_output=True, text=True)
    assert usage.returncode != 0 and "make admin USER=name" in usage.stderr


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
    wrong = alice.post("/v1/auth/passwd", {"password": "bad", "new_password": "N3w-password-1"})
    assert wrong.status_code == 400 and "wrong" in str(wrong.json())
    changed = alice.post("/v1/auth/passwd", {"password": "pw-alice", "new_password": "N3w-password-1"})
    assert changed.status_code == 200 and changed.json()["detail"] == "Password changed."
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "N3w-password-1"}).status_code == 200
    other = make_user("carol")
    assert other.post("/v1/auth/passwd", {"username": "alice", "new_password": GOOD}).status_code == 403
    assert admin_client.post("/v1/auth/passwd", {"username": "alice", "new_password": "N3w-password-2"}).status_code == 200
    assert anon.post("/v1/auth/login/", {"username": "alice", "password": "N3w-password-2"}).status_code == 200


def test_passwd_ends_every_session_and_gives_the_caller_a_new_token(alice, admin_client, anon):
    old = alice._credentials["HTTP_AUTHORIZATION"]
    answer = alice.post("/v1/auth/passwd", {"password": "pw-alice", "new_password": GOOD, "username": None})
    assert answer.status_code == 200 and set(answer.json()) == {"detail", "token"}
    assert alice.get("/v1/apps").status_code == 401  # the old token stopped working
    alice.credentials(HTTP_AUTHORIZATION=f"token {answer.json()['token']}")
    assert alice.get("/v1/apps").status_code == 200 and alice._credentials["HTTP_AUTHORIZATION"] != old
    # An admin changing alice's password ends her sessions, not the admin's own; no token for alice.
    by_admin = admin_client.post("/v1/auth/passwd", {"username": "alice", "new_password": "N3w-password-3"})
    assert by_admin.status_code == 200 and "token" not in by_admin.json()
    assert alice.get("/v1/apps").status_code == 401
    assert admin_client.get("/v1/apps").status_code == 200
    login = anon.post("/v1/auth/login/", {"username": "alice", "password": "N3w-password-3"})
    assert login.status_code == 200 and login.json()["token"] != answer.json()["token"]


# --- token expiry ----------------------------------------------------------------------------

def age_tokens(seconds):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    Token.objects.update(created=timezone.now() - timedelta(seconds=seconds))


def test_tokens_never_expire_by_default(alice):
    age_tokens(10 * 365 * 86400)
    assert alice.get("/v1/apps").status_code == 200


def test_expired_token_is_401_and_login_gives_a_fresh_one(alice, anon, settings):
    settings.TOKEN_TTL = 60
    age_tokens(30)
    assert alice.get("/v1/apps").status_code == 200
    age_tokens(61)
    expired = alice.get("/v1/apps")
    assert expired.status_code == 401 and expired.json()["detail"] == "token expired, log in again"
    login = anon.post("/v1/auth/login/", {"username": "alice", "password": "pw-alice"})
    assert login.status_code == 200
    alice.credentials(HTTP_AUTHORIZATION=f"token {login.json()['token']}")
    assert alice.get("/v1/apps").status_code == 200


def test_expiry_is_an_authentication_class_on_tokens():
    from django.conf import settings
    from rest_framework.authentication import TokenAuthentication

    from deis.controller.api.authentication import ExpiringTokenAuthentication

    assert issubclass(ExpiringTokenAuthentication, TokenAuthentication)
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] == [
        "deis.controller.api.authentication.ExpiringTokenAuthentication"]


# --- login throttling ------------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch, settings):
    """Throttle settings of 3 failures in 300 s, and the throttle's clock in the test's hands."""
    settings.LOGIN_FAILURES, settings.LOGIN_WINDOW = 3, 300
    now = [1_000_000.0]
    monkeypatch.setattr(accounts, "time", SimpleNamespace(time=lambda: now[0]))
    return now


def login(client, username, password, address="10.0.0.1"):
    return client.post("/v1/auth/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_throttled_per_user_even_with_the_right_password(alice, anon, clock):
    for _ in range(3):
        assert login(anon, "alice", "wrong", "10.0.0.1").status_code == 401
    for address in ("10.0.0.1", "10.9.9.9"):  # the account's counter, whatever the address
        refused = login(anon, "alice", "pw-alice", address)
        assert refused.status_code == 429, refused.content
        assert refused["Retry-After"] == "300"
        assert "Too many failed logins" in refused.json()["detail"] and "alice" not in refused.json()["detail"]
    clock[0] += 120
    assert login(anon, "alice", "pw-alice", "10.9.9.9")["Retry-After"] == "180"
    clock[0] += 180  # the window passed
    assert login(anon, "alice", "pw-alice", "10.9.9.9").status_code == 200
    # Success reset the account's counter: two more failures do not lock it out.
    for _ in range(2):
        assert login(anon, "alice", "wrong", "10.9.9.8").status_code == 401
    assert login(anon, "alice", "pw-alice", "10.9.9.7").status_code == 200


def test_login_throttled_per_address_without_telling_whether_users_exist(alice, bob, anon, clock):
    attacker = "192.0.2.7"
    assert login(anon, "ghost", "x", attacker).status_code == 401
    assert login(anon, "bob", "x", attacker).status_code == 401
    # The attacker's own successful login does not clear the address's count.
    assert login(anon, "alice", "pw-alice", attacker).status_code == 200
    assert login(anon, "nobody", "x", attacker).status_code == 401
    ghost, real = login(anon, "ghost2", "x", attacker), login(anon, "bob", "pw-bob", attacker)
    assert ghost.status_code == real.status_code == 429
    assert ghost.json() == real.json() and ghost["Retry-After"] == real["Retry-After"]
    assert "bob" not in real.json()["detail"] and "ghost" not in ghost.json()["detail"]
    assert login(anon, "bob", "pw-bob", "198.51.100.1").status_code == 200  # other addresses may
    clock[0] += 300
    assert login(anon, "bob", "pw-bob", attacker).status_code == 200


def test_passwd_guesses_are_throttled_too(alice, clock):
    for _ in range(3):
        assert alice.post("/v1/auth/passwd", {"password": "guess", "new_password": GOOD}).status_code == 400
    refused = alice.post("/v1/auth/passwd", {"password": "pw-alice", "new_password": GOOD})
    assert refused.status_code == 429 and refused["Retry-After"]


def test_login_counters_live_in_the_data_directory(alice, anon, settings):
    from django.conf import settings as live_settings

    login(anon, "alice", "wrong")
    folder = Path(live_settings.CACHES["accounts"]["LOCATION"])
    assert folder == live_settings.DATA_DIR / "cache"
    assert folder.stat().st_mode & 0o777 == 0o700 and any(folder.iterdir())


def throttle_on(folder, failures=3):
    from django.core.cache.backends.filebased import FileBasedCache

    folder.mkdir(mode=0o700, exist_ok=True)
    return accounts.LoginThrottle(FileBasedCache(str(folder), {}), failures, 300, folder / "login.lock")


def test_counters_are_shared_by_processes(tmp_path):
    """Two cache instances on one folder (two gunicorn workers) see each other's failures..."""
    one, two = throttle_on(tmp_path / "cache"), throttle_on(tmp_path / "cache")
    key = accounts.user_key("alice")
    one.failed([key])
    two.failed([key])
    assert one.retry_after([key]) == two.retry_after([key]) == 0
    one.failed([key])
    assert 299 <= two.retry_after([key]) <= 300
    two.reset(key)
    assert one.retry_after([key]) == 0


def _fail_many(folder, key, times):
    throttle = throttle_on(folder, failures=10_000)
    for _ in range(times):
        throttle.failed([key])


def test_no_failure_is_lost_between_concurrent_processes(tmp_path):
    """...and none of them loses another's count when they fail at the same moment."""
    import multiprocessing

    key = accounts.address_key("192.0.2.1")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_fail_many, args=(tmp_path / "cache", key, 40)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(throttle_on(tmp_path / "cache").store.get(key)) == 160


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
