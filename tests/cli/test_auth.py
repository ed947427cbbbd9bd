"""register, login, whoami, logout, passwd, regenerate, cancel, and settings in ~/.deis."""

import json

import requests

from deis.controller.api.accounts import issue_admin_token
from tests.conftest import LiveController, free_port, start_live_controller, unique

from .conftest import PASSWORD, Deis


def settings(deis, profile="client"):
    return json.loads((deis.home / ".deis" / f"{profile}.json").read_text())


def test_register_prompts_for_missing_values_then_logs_in(deis, live):
    name = unique("reg")
    result = deis.ok("register", live.url, input=f"{name}\n{PASSWORD}\n{PASSWORD}\n{name}@example.com\n")
    assert f"Registered {name}" in result.out
    assert f"Logged in as {name}" in result.out
    saved = settings(deis)
    assert saved["controller"] == live.url and saved["username"] == name and saved["ssl_verify"] is True
    assert requests.get(f"{live.url}/v1/apps", headers={"Authorization": f"token {saved['token']}"}).ok
    assert deis.ok("whoami").out.strip() == f"You are {name} at {live.url}"


def test_register_accepts_url_without_scheme_and_options(deis, live):
    name = unique("reg")
    host = live.url.removeprefix("http://")
    deis.ok("auth:register", host, "--username", name, "--password", PASSWORD, "--email", f"{name}@example.com")
    assert settings(deis)["controller"] == live.url


def test_register_never_makes_an_admin_but_the_admin_token_does(deis, live, tmp_path):
    name = unique("reg")
    deis.ok("register", live.url, "--username", name, "--password", PASSWORD, "--email", "")
    assert requests.get(f"{live.url}/v1/users/", headers={"Authorization": f"token {settings(deis)['token']}"}
                        ).status_code == 403
    # The one-time token `deis-platform up` prints (only its hash is in the data directory).
    token = issue_admin_token(live.controller.data_dir / "admin_token")
    boss = Deis(tmp_path / "boss-home", deis.cwd, live.url)
    boss.home.mkdir()
    boss.ok("register", live.url, "--username", unique("boss"), "--password", PASSWORD, "--email", "",
            "--admin-token", token)
    assert "=== Users" in boss.ok("users:list").out
    other = Deis(tmp_path / "other-home", deis.cwd, live.url)
    other.home.mkdir()
    used = other.fails("register", live.url, "--username", unique("late"), "--password", PASSWORD,
                       "--email", "", "--admin-token", token)
    assert "The admin token is wrong or has been used already." in used.err


def test_register_weak_password_shows_the_validators_messages(deis, live):
    result = deis.fails("register", live.url, "--username", unique("reg"), "--password", "1234", "--email", "")
    assert "password: This password is too short." in result.err and "entirely numeric" in result.err


def test_register_taken_username_shows_the_field_error(deis, live, user):
    result = deis.fails("register", live.url, "--username", user.username, "--password", PASSWORD, "--email", "")
    assert "username: A user with that username already exists." in result.err


def test_login_logout_whoami(deis, live):
    api_user = live.register(unique("log"), PASSWORD)
    deis.ok("login", live.url, input=f"{api_user.username}\n{PASSWORD}\n")
    assert api_user.username in deis.ok("auth:whoami").out
    assert deis.ok("logout").out.strip() == "Logged out"
    assert settings(deis) == {"controller": None, "username": None, "token": None, "ssl_verify": None}
    assert "deis login" in deis.fails("whoami").err
    # without URL, login uses the controller last used... which logout forgot
    assert deis("login", "--username", api_user.username, "--password", PASSWORD).code != 0


def test_login_with_wrong_password(deis, live, user):
    result = deis.fails("login", live.url, "--username", user.username, "--password", "wrong")
    assert "The username or password is wrong." in result.err


def test_deis_profile_selects_the_settings_file(deis, live, user):
    deis.ok("login", live.url, "--username", user.username, "--password", PASSWORD, DEIS_PROFILE="staging")
    assert settings(deis, "staging")["username"] == user.username
    deis.ok("logout", DEIS_PROFILE="staging")
    assert settings(deis)["username"] == user.username


def test_not_logged_in_commands_say_to_log_in(deis, live):
    for command in (["apps"], ["apps:info", "-a", "whatever"], ["keys:list"], ["config", "-a", "x"]):
        result = deis.fails(*command)
        assert "You are not logged in" in result.err and "deis login" in result.err


def test_unreachable_controller(deis, live, user):
    path = deis.home / ".deis" / "client.json"
    saved = json.loads(path.read_text())
    closed = f"http://127.0.0.1:{free_port()}"
    path.write_text(json.dumps({**saved, "controller": closed}))
    result = deis.fails("apps")
    assert f"Error: cannot reach the controller at {closed}: " in result.err
    assert deis.fails("login", closed, "--username", "a", "--password", "b").err.startswith(
        f"Error: cannot reach the controller at {closed}")


def test_login_to_something_that_is_not_a_controller(deis, live):
    result = deis.fails("login", live.url + "/healthz", "--username", "a", "--password", "b")
    assert "does not appear to be a Deis controller" in result.err
    assert "not a valid controller URL" in deis.fails("login", "http://[oops", "--username", "a").err


def test_passwd(deis, live, user):
    result = deis.fails("passwd", "--password", "wrong", "--new-password", "other-pass-1")
    assert "password: The current password is wrong." in result.err
    weak = deis.fails("passwd", "--password", PASSWORD, "--new-password", "abc")
    assert "new_password: This password is too short." in weak.err
    old = settings(deis)["token"]
    assert "Password change succeeded." in deis.ok("auth:passwd", input=f"{PASSWORD}\nnew-pass-99\nnew-pass-99\n").out
    # Every session ended; the CLI carries on with the new token the answer gave it.
    assert requests.get(f"{live.url}/v1/apps", headers={"Authorization": f"token {old}"}).status_code == 401
    assert settings(deis)["token"] != old
    deis.ok("apps")
    live.login(user.username, "new-pass-99")


def test_login_throttled_across_the_controllers_workers(deis, tmp_path):
    """3 failures, then even the right password is refused (429, Retry-After) by every worker."""
    controller, stop = start_live_controller(tmp_path / "throttled", {"DEIS_LOGIN_FAILURES": "3",
                                                                     "DEIS_LOGIN_WINDOW": "300"})
    try:
        live = LiveController(controller)
        name = unique("victim")
        live.register(name, PASSWORD)
        for _ in range(3):  # new connections each: gunicorn's two workers share them out
            answer = requests.post(f"{live.url}/v1/auth/login/", data={"username": name, "password": "wrong"})
            assert answer.status_code == 401
        for _ in range(6):
            refused = requests.post(f"{live.url}/v1/auth/login/", data={"username": name, "password": PASSWORD})
            assert refused.status_code == 429 and 290 <= int(refused.headers["Retry-After"]) <= 300
        result = deis.fails("login", live.url, "--username", name, "--password", PASSWORD)
        assert "Too many failed logins for this account or from this address; try again in" in result.err
        assert (controller.data_dir / "cache").stat().st_mode & 0o777 == 0o700
    finally:
        stop()


def test_regenerate_replaces_the_saved_token(deis, live, user):
    old = settings(deis)["token"]
    assert deis.ok("auth:regenerate").out.strip() == "Token regenerated."
    new = settings(deis)["token"]
    assert new != old
    assert requests.get(f"{live.url}/v1/apps", headers={"Authorization": f"token {old}"}).status_code == 401
    deis.ok("apps")


def test_stale_token_tells_to_log_in_again(deis, live, user):
    path = deis.home / ".deis" / "client.json"
    path.write_text(json.dumps({**settings(deis), "token": "0" * 40}))
    result = deis.fails("apps")
    assert "Invalid token" in result.err and f"deis login {live.url}" in result.err


def test_cancel_removes_the_account_and_logs_out(deis, live, user):
    result = deis.ok("auth:cancel", input="y\n")
    assert "Account cancelled" in result.out
    assert settings(deis)["token"] is None
    deis.fails("login", live.url, "--username", user.username, "--password", PASSWORD)


def test_cancel_refused_while_owning_apps(deis, app):
    assert "still owns apps" in deis.fails("auth:cancel", "--yes").err
