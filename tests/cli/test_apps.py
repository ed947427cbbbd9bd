"""apps:*: create (with its git remote), detection of the app from the remote, list, info, open,
transfer, destroy, and the errors for unknown apps and other people's apps."""

import re

from tests.conftest import unique

from .conftest import log_in


def test_create_in_a_git_repo_adds_the_remote_and_commands_find_the_app(deis, user, repo):
    name = unique("app")
    result = deis.ok("create", name)
    assert f"Creating Application... done, created {name}" in result.out
    assert "Git remote deis added" in result.out
    assert deis.git("remote", "get-url", "deis").strip() == f"ssh://git@127.0.0.1:2222/{name}.git"
    # without --app, the app comes from the `deis` remote, also from a subdirectory
    assert f"=== {name} Application" in deis.ok("info").out
    (repo / "sub").mkdir()
    assert f"=== {name} Config" in deis.ok("config", cwd=repo / "sub").out


def test_create_without_a_name_gets_a_generated_one(deis, user, repo):
    result = deis.ok("apps:create")
    name = re.search(r"done, created ([a-z0-9-]+)", result.out).group(1)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", name)
    assert name in deis.git("remote", "get-url", "deis")
    assert user.get(f"/v1/apps/{name}").status_code == 200


def test_create_no_remote_and_named_remote(deis, user, repo):
    first, second = unique("app"), unique("app")
    result = deis.ok("create", first, "--no-remote", "--buildpack", "https://example.com/buildpack.git")
    assert f"remote available at ssh://git@127.0.0.1:2222/{first}.git" in result.out
    assert deis.git("remote").strip() == ""
    assert user.get(f"/v1/apps/{first}/config").json()["values"] == {"BUILDPACK_URL": "https://example.com/buildpack.git"}
    assert "Git remote staging added" in deis.ok("create", second, "--remote", "staging").out
    assert second in deis.git("remote", "get-url", "staging")


def test_create_keeps_an_existing_remote(deis, user, repo):
    deis.git("remote", "add", "deis", "ssh://git@example.com:2222/other.git")
    name = unique("app")
    result = deis.ok("create", name)
    assert "exists already" in result.err
    assert "other.git" in deis.git("remote", "get-url", "deis")
    assert "exists already" in deis.fails("git:remote", "-a", name).err
    assert "Git remote mine added" in deis.ok("git:remote", "-a", name, "-r", "mine").out


def test_create_errors_come_from_the_server(deis, user, app):
    assert f"An app named '{app}' already exists" in deis.fails("create", app, "--no-remote").err
    assert "id: 'Bad_Name' is not a valid app name" in deis.fails("create", "Bad_Name", "--no-remote").err


def test_without_app_or_remote_the_error_says_what_to_do(deis, user, repo):
    assert "use --app NAME" in deis.fails("info").err
    outside = deis.cwd.parent / "elsewhere"
    outside.mkdir()
    assert "not in a git repository" in deis.fails("config", cwd=outside).err


def test_list_and_info(deis, user, app):
    listing = deis.ok("apps").out
    assert listing.startswith("=== Apps")
    assert re.search(rf"^{app}\s+{user.username}\s+{app}\.", listing, re.M)
    assert deis.ok("apps:list").out == listing
    info = deis.ok("apps:info", "-a", app).out
    assert f"=== {app} Application" in info and f"owner:     {user.username}" in info
    # without a runtime, the processes part says why, and info still succeeds
    assert f"=== {app} Processes\nNo container runtime" in info
    assert f"=== {app} Domains\nNo domains" in info


def test_open_prints_the_url(deis, user, app):
    assert f"Opening http://{app}." in deis.ok("open", "-a", app).out


def test_unknown_app_and_someone_elses_app(deis, live, user, app):
    assert "No app named 'no-such-app'." in deis.fails("info", "-a", "no-such-app").err
    other = live.register(unique("other"))
    log_in(deis, other)
    for command in (["info"], ["config"], ["config:set", "A=1"], ["releases"], ["destroy", "--confirm", app]):
        result = deis.fails(*command, "-a", app)
        assert f"(ask its owner, {user.username})" in result.err, result


def test_transfer(deis, live, user, app):
    other = live.register(unique("other"))
    assert f"Transferring {app} to {other.username}... done" in deis.ok("apps:transfer", other.username, "-a", app).out
    assert other.get(f"/v1/apps/{app}").json()["owner"] == other.username
    assert "You may not" in deis.fails("apps:transfer", user.username, "-a", app).err


def test_destroy_asks_for_the_name(deis, user, app):
    result = deis.fails("destroy", "-a", app, input="wrong\n")
    assert f'To proceed, type "{app}"' in result.err and "Destroy aborted" in result.err
    assert user.get(f"/v1/apps/{app}").status_code == 200
    assert f"Destroying {app}... done" in deis.ok("apps:destroy", "-a", app, input=f"{app}\n").out
    assert user.get(f"/v1/apps/{app}").status_code == 404


def test_destroy_confirm_from_the_repo_removes_the_remote(deis, user, repo):
    name = unique("app")
    deis.ok("create", name)
    result = deis.ok("destroy", "--confirm", name)
    assert f"Destroying {name}... done" in result.out and "Git remote deis removed" in result.out
    assert deis.git("remote").strip() == ""
    assert user.get(f"/v1/apps/{name}").status_code == 404
