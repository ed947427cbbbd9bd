"""Each built-in buildpack proven end to end: the test apps of tests/builder/apps are copied into a
git repository, committed and pushed with the real git over the real SSH to the builder; the build
runs in a container (pip from PyPI, npm from the npm registry, through the host's proxy), the
controller deploys it on the Docker scheduler and nginx serves it. What the person pushing sees
(`remote:` lines, git's exit status) and what the router and the API say afterwards are asserted.

Apps are shared within the module where a test builds on an earlier push (the Flask app serves
tests 1 and 7), so the file stays around three minutes on a small machine.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builder.conftest import GitUser, git_commit, git_make_repo, git_remote_sha

APPS = Path(__file__).resolve().parent / "apps"


# ---- helpers ----------------------------------------------------------------------------------

def push(user: GitUser, repo: Path):
    return user.git("push", "deis", "master", cwd=repo)


def app_repo(platform, user: GitUser, tmp: Path, source: str, prefix: str) -> tuple[str, Path]:
    """A new app and a git work tree holding a copy of tests/builder/apps/<source>, committed."""
    app = platform.app(user, prefix)
    repo = tmp / app
    shutil.copytree(APPS / source, repo, symlinks=True)
    git_make_repo(repo, {}, user, app)
    return app, repo


def releases(user: GitUser, app: str) -> list[tuple[int, bool]]:
    """(version, failed) of the app's releases, newest first."""
    answer = user.api.get(f"/v1/apps/{app}/releases")
    assert answer.status_code == 200, answer.text
    return [(r["version"], bool(r.get("failed"))) for r in answer.json()["results"]]


def processes(user: GitUser, app: str) -> list[dict]:
    answer = user.api.get(f"/v1/apps/{app}/containers")
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def wait_up(user: GitUser, app: str, name: str, timeout: float = 20) -> dict:
    """The process `name` (like "worker.1") once `deis ps` shows it up."""
    deadline = time.monotonic() + timeout
    while True:
        found = {f"{p['type']}.{p['num']}": p for p in processes(user, app)}
        if name in found and found[name]["state"] == "up":
            return found[name]
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} of {app} is not up after {timeout}s: {found}")
        time.sleep(0.5)


def set_config(user: GitUser, app: str, values: dict) -> int:
    """`deis config:set`: the version of the release it made."""
    answer = user.api.post(f"/v1/apps/{app}/config", json={"values": values})
    assert answer.status_code == 201, answer.text
    return int(answer.headers["Deis-Release"])


def assert_launched(out: str, app: str, version: int) -> None:
    assert f"remote: -----> Launching... done, v{version}" in out, out
    assert f"remote:        http://{app}.localhost" in out, out


def assert_rejected(pushed, out_contains: str) -> None:
    assert pushed.returncode != 0, pushed.stderr
    assert out_contains in pushed.stderr, pushed.stderr
    assert "! [remote rejected] master -> master (pre-receive hook declined)" in pushed.stderr, pushed.stderr
    assert "Launching... done" not in pushed.stderr


# ---- module fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bp_owner(builder_platform) -> GitUser:
    return builder_platform.user("bp")


@pytest.fixture(scope="module")
def bp_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("push-buildpacks")


@dataclass
class Deployed:
    """An app and its work tree, pushed once (`first`: that push's CompletedProcess)."""

    app: str
    repo: Path
    first: object


@pytest.fixture(scope="module")
def flask_app(builder_platform, bp_owner, bp_tmp) -> Deployed:
    app, repo = app_repo(builder_platform, bp_owner, bp_tmp, "flask", "flask")
    first = push(bp_owner, repo)
    assert first.returncode == 0, first.stderr
    return Deployed(app, repo, first)


# ---- 1. Python: Flask ------------------------------------------------------------------------

def test_flask_app_is_built_with_pip_and_served_then_a_code_change_reuses_the_virtualenv(
        builder_platform, bp_owner, flask_app):
    app, repo, out = flask_app.app, flask_app.repo, flask_app.first.stderr
    assert "remote: -----> Python app detected" in out
    assert "remote: -----> Using Python 3.11" in out  # runtime.txt asks for python-3.11
    assert "remote: -----> Creating a virtualenv in .venv" in out
    assert "remote: -----> Installing requirements with pip" in out
    assert "remote:        Collecting Flask==3.0.3" in out  # pip's own output, streamed
    assert any(line.startswith("remote:        Successfully installed") and "Flask-3.0.3" in line
               and "gunicorn-23.0.0" in line for line in out.splitlines()), out
    assert "remote: -----> Caching the virtualenv" in out
    assert "remote: -----> Procfile declares types -> web" in out
    assert_launched(out, app, 2)
    assert out.index("Python app detected") < out.index("Installing requirements") < out.index("Launching")
    page = builder_platform.get(app)
    assert page.status_code == 200 and page.text == "hello from flask on port 5000\n"
    web = wait_up(bp_owner, app, "web.1")
    assert web["release"] == "v2", web
    assert [p["type"] for p in processes(bp_owner, app)] == ["web"]

    # One line of code changes, requirements do not: the cached virtualenv is reused, pip
    # downloads nothing.
    app_py = (repo / "app.py").read_text().replace('"hello from flask', '"hello again from flask')
    sha = git_commit(repo, {"app.py": app_py}, bp_owner, "one line changed")
    second = push(bp_owner, repo)
    assert second.returncode == 0, second.stderr
    out = second.stderr
    assert "remote: -----> Using cached virtualenv (dependencies unchanged)" in out
    assert "Creating a virtualenv" not in out and "Caching the virtualenv" not in out
    assert "Collecting" not in out and "Downloading" not in out
    assert_launched(out, app, 3)
    assert builder_platform.get(app).text == "hello again from flask on port 5000\n"
    assert releases(bp_owner, app)[:2] == [(3, False), (2, False)]
    assert git_remote_sha(builder_platform, app) == sha
    assert wait_up(bp_owner, app, "web.1")["release"] == "v3"


# ---- 2. Python: Django and collectstatic -------------------------------------------------------

def test_django_static_file_exists_only_after_collectstatic(builder_platform, bp_owner, bp_tmp):
    owner = bp_owner
    app, repo = app_repo(builder_platform, owner, bp_tmp, "django", "django")
    first = push(owner, repo)
    assert first.returncode == 0, first.stderr
    out = first.stderr
    assert "remote: -----> Python app detected" in out
    # .python-version asks for 3.13, which the stack does not have: the push says which it uses.
    assert "remote:  !     .python-version asks for Python 3.13, which this stack does not have" in out
    assert "remote: -----> Using Python 3.11" in out
    assert "remote: -----> Running python manage.py collectstatic --noinput" in out
    assert "static file copied to" in out  # collectstatic's own output
    assert_launched(out, app, 2)
    assert builder_platform.get(app).text == "hello from django\n"
    asset = builder_platform.get(app, "/static/site.css")
    assert asset.status_code == 200, asset.text
    assert asset.text == "/* collected by collectstatic */ body { color: purple; }\n"
    good = git_remote_sha(builder_platform, app)

    # collectstatic failing (no STATIC_ROOT) fails the push, and v2 keeps serving.
    settings = repo / "mysite" / "settings.py"
    original = settings.read_text()
    git_commit(repo, {"mysite/settings.py": original.replace('STATIC_ROOT = BASE_DIR / "staticfiles"', "")},
               owner, "break collectstatic")
    broken = push(owner, repo)
    assert_rejected(broken, "remote: !     Build failed: the Python buildpack failed (bin/compile exited 1)")
    assert "remote:  !     collectstatic failed: fix the error above, or set DISABLE_COLLECTSTATIC=1" in broken.stderr
    assert "STATIC_ROOT" in broken.stderr  # Django's own reason
    assert "remote: -----> Using cached virtualenv (dependencies unchanged)" in broken.stderr
    assert git_remote_sha(builder_platform, app) == good
    assert releases(owner, app)[0] == (2, False)
    assert builder_platform.get(app, "/static/site.css").status_code == 200

    # DISABLE_COLLECTSTATIC=1: a release of the same build (the asset is still in that image)...
    assert set_config(owner, app, {"DISABLE_COLLECTSTATIC": "1"}) == 3
    v2, v3 = (owner.api.get(f"/v1/apps/{app}/releases/v{n}").json() for n in (2, 3))
    assert v3["build"] == v2["build"] and v3["config"] != v2["config"]
    assert builder_platform.get(app, "/static/site.css").status_code == 200
    # ...then a new commit (the settings fixed again) is built without collectstatic: no asset.
    git_commit(repo, {"mysite/settings.py": original, "mysite/urls.py": (repo / "mysite/urls.py").read_text()
                      .replace("hello from django", "hello from django, no collectstatic")}, owner, "fixed")
    second = push(owner, repo)
    assert second.returncode == 0, second.stderr
    out = second.stderr
    assert "remote: -----> Skipping collectstatic (DISABLE_COLLECTSTATIC=1)" in out
    assert "Running python manage.py collectstatic" not in out
    assert_launched(out, app, 4)
    assert builder_platform.get(app).text == "hello from django, no collectstatic\n"
    assert builder_platform.get(app, "/static/site.css").status_code == 404
    assert [v for v, failed in releases(owner, app)] == [4, 3, 2, 1]


# ---- 3. Node.js: Express without a Procfile ----------------------------------------------------

def test_express_app_runs_npm_start_by_default(builder_platform, bp_owner, bp_tmp):
    owner = bp_owner
    app, repo = app_repo(builder_platform, owner, bp_tmp, "express", "express")
    assert not (repo / "Procfile").exists()
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    out = pushed.stderr
    assert "remote: -----> Node.js app detected" in out
    assert "remote: -----> Installing dependencies with npm ci (package-lock.json)" in out
    assert "remote: -----> Running npm run build" in out
    assert "remote: -----> Default process types -> web" in out
    assert_launched(out, app, 2)
    page = builder_platform.get(app)
    assert page.status_code == 200 and page.text == "hello from express on port 5000\n"
    assert builder_platform.get(app, "/built").text == "built by npm run build\n"
    builds = owner.api.get(f"/v1/apps/{app}/builds").json()["results"]
    assert builds[0]["procfile"] == {"web": "npm start"}
    assert wait_up(owner, app, "web.1")["release"] == "v2"


# ---- 4. Static site ----------------------------------------------------------------------------

def test_static_site_is_served_and_its_dotfiles_are_not(builder_platform, bp_owner, bp_tmp):
    owner = bp_owner
    app, repo = app_repo(builder_platform, owner, bp_tmp, "static", "static")
    assert (repo / ".env").is_file()  # committed and pushed with the rest
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: -----> Static app detected" in pushed.stderr
    assert_launched(pushed.stderr, app, 2)
    index = builder_platform.get(app)
    assert index.status_code == 200 and "<h1>hello from a static site</h1>" in index.text
    assert builder_platform.get(app, "/index.html").text == index.text
    assert builder_platform.get(app, "/css/site.css").text == "body { color: teal; }\n"
    for path in ("/.env", "/%2Eenv", "/css/../.env", "/.profile.d/"):
        answer = builder_platform.get(app, path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "do-not-serve" not in answer.text


# ---- 5. Procfile only: web, worker and a release command ---------------------------------------

def test_procfile_app_release_command_worker_and_a_failing_release(builder_platform, bp_owner, bp_tmp):
    import docker

    owner = bp_owner
    app, repo = app_repo(builder_platform, owner, bp_tmp, "procfile", "procs")
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    out = pushed.stderr
    assert "remote: -----> Null app detected" in out
    assert "remote: -----> Procfile declares types -> web, worker, release" in out
    assert_launched(out, app, 2)
    assert builder_platform.get(app, "/hello.txt").text == "hello from a Procfile-only app\n"
    good = git_remote_sha(builder_platform, app)
    # The release command's output is not in the push; the controller writes it to the app's log
    # itself (no logger daemon is needed for these platform lines).
    logs = owner.api.get(f"/v1/apps/{app}/logs", params={"log_lines": 100})
    assert logs.status_code == 200, logs.text
    assert f"deis[release]: release command: release phase ran for {app}" in logs.text, logs.text
    assert "v2 deployed (web=1 worker=0)" in logs.text
    assert sorted(f"{p['type']}.{p['num']}" for p in processes(owner, app)) == ["web.1"]

    # deis scale worker=1
    scaled = owner.api.post(f"/v1/apps/{app}/scale", json={"worker": 1})
    assert scaled.status_code == 204, scaled.text
    worker = wait_up(owner, app, "worker.1")
    assert worker["release"] == "v2"
    assert sorted(f"{p['type']}.{p['num']}" for p in processes(owner, app)) == ["web.1", "worker.1"]
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 10
        while f"worker {app} tick" not in client.containers.get(worker["name"]).logs().decode():
            assert time.monotonic() < deadline, "the worker printed nothing"
            time.sleep(0.5)
    finally:
        client.close()
    release_scale = owner.api.post(f"/v1/apps/{app}/scale", json={"release": 1})
    assert release_scale.status_code == 400, release_scale.text  # never scaled

    # A release command that fails: the push fails with the reason, nothing new is deployed.
    procfile = (repo / "Procfile").read_text().replace(
        'release: echo "release phase ran for $DEIS_APP"',
        'release: echo "migration 42 failed for $DEIS_APP"; exit 3')
    git_commit(repo, {"Procfile": procfile, "public/hello.txt": "never served\n"}, owner, "bad release")
    failed = push(owner, repo)
    assert_rejected(failed, "remote: !     v3 was not deployed: the release command "
                            '`echo "migration 42 failed for $DEIS_APP"; exit 3` exited with code 3')
    assert f"migration 42 failed for {app}" in failed.stderr  # its output, in the push
    assert releases(owner, app)[:2] == [(3, True), (2, False)]
    failure = owner.api.get(f"/v1/apps/{app}/releases/v3").json()["failure"]
    assert "exited with code 3" in failure and f"migration 42 failed for {app}" in failure
    assert git_remote_sha(builder_platform, app) == good
    assert builder_platform.get(app, "/hello.txt").text == "hello from a Procfile-only app\n"
    logs = owner.api.get(f"/v1/apps/{app}/logs", params={"log_lines": 100}).text
    assert f"deis[release]: release command: migration 42 failed for {app}" in logs, logs
    assert "deis[api]: v3 was not deployed: the release command" in logs, logs
    running = processes(owner, app)
    assert sorted(f"{p['type']}.{p['num']}" for p in running) == ["web.1", "worker.1"]
    assert {p["release"] for p in running} == {"v2"}


# ---- 6. A third-party buildpack from a local git repository ------------------------------------

def test_buildpack_url_of_a_local_git_repository(builder_platform, bp_owner, bp_tmp):
    owner = bp_owner
    buildpack = bp_tmp / "my-buildpack"
    shutil.copytree(APPS / "buildpack-null", buildpack)
    (buildpack / "bin" / "compile").write_text(
        "#!/bin/bash\n"
        'echo "-----> my-buildpack compiling $1"\n'
        'echo "compiled by my-buildpack" > "$1/compiled.txt"\n'
        'echo "       config seen: GREETING=$(cat "$3/GREETING")"\n')
    for script in (buildpack / "bin").iterdir():
        script.chmod(0o755)
    git_make_repo(buildpack, {}, owner)
    # index.html alone would be detected as a static site: BUILDPACK_URL skips detection.
    app = builder_platform.app(owner, "thirdparty")
    repo = git_make_repo(bp_tmp / app, {"index.html": "<p>served by the third-party buildpack</p>\n"},
                         owner, app)
    version = set_config(owner, app, {"BUILDPACK_URL": f"file://{buildpack}", "GREETING": "hi"})
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    out = pushed.stderr
    assert "remote: -----> Third-party null app detected" in out
    assert "remote: -----> my-buildpack compiling /app" in out
    assert "remote:        config seen: GREETING=hi" in out
    assert "Static app detected" not in out
    assert "remote: -----> Default process types -> web" in out
    assert_launched(out, app, version + 1)
    assert builder_platform.get(app, "/index.html").text == "<p>served by the third-party buildpack</p>\n"
    assert builder_platform.get(app, "/compiled.txt").text == "compiled by my-buildpack\n"
    assert owner.api.get(f"/v1/apps/{app}/builds").json()["results"][0]["procfile"] == {
        "web": 'python3 -m http.server "$PORT"'}

    # The plain path works as well; the buildpack is read afresh for every build.
    compile_script = buildpack / "bin" / "compile"
    git_commit(buildpack, {"bin/compile": compile_script.read_text().replace("compiling", "(v2) compiling")},
               owner, "v2 of the buildpack")
    version = set_config(owner, app, {"BUILDPACK_URL": str(buildpack)})
    git_commit(repo, {"index.html": "<p>second</p>\n"}, owner)
    again = push(owner, repo)
    assert again.returncode == 0, again.stderr
    assert "remote: -----> my-buildpack (v2) compiling /app" in again.stderr
    assert_launched(again.stderr, app, version + 1)
    assert builder_platform.get(app, "/index.html").text == "<p>second</p>\n"


# ---- 7. A failing compile leaves the deployed release serving ----------------------------------

def test_a_requirement_that_does_not_exist_fails_the_push_and_the_old_release_keeps_serving(
        builder_platform, bp_owner, flask_app):
    owner, app, repo = bp_owner, flask_app.app, flask_app.repo
    before, served, sha = releases(owner, app), builder_platform.get(app).text, git_remote_sha(builder_platform, app)
    current = before[0][0]
    assert before[0][1] is False and served.startswith("hello") and sha
    good_requirements, good_code = (repo / "requirements.txt").read_text(), (repo / "app.py").read_text()
    git_commit(repo, {"requirements.txt": "flask==99\ngunicorn==23.0.0\n", "app.py": "broken = True\n"},
               owner, "a version of flask that does not exist")
    failed = push(owner, repo)
    assert_rejected(failed, "remote: !     Build failed: the Python buildpack failed (bin/compile exited 1)")
    # pip's reason, in the streamed output and again in the one-line reason
    assert "remote:        ERROR: No matching distribution found for flask==99" in failed.stderr
    reason = next(line for line in failed.stderr.splitlines() if "Build failed" in line)
    assert reason.rstrip().endswith("last output: ERROR: No matching distribution found for flask==99"), reason
    assert "remote: -----> Dependencies changed: making a new virtualenv" in failed.stderr
    assert releases(owner, app) == before  # no release was made
    newest = owner.api.get(f"/v1/apps/{app}/builds").json()["results"][0]  # kept for deis builds:info
    assert newest["failed"] is True and newest["image"] == ""
    assert newest["sha"] == owner.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    log = owner.api.get(f"/v1/apps/{app}/builds/{newest['uuid']}").json()["log"]
    assert "No matching distribution found for flask==99" in log
    assert git_remote_sha(builder_platform, app) == sha
    page = builder_platform.get(app)
    assert page.status_code == 200 and page.text == served
    assert wait_up(owner, app, "web.1")["release"] == f"v{current}"

    # The failed build left the cached virtualenv intact: the fixed push reuses it.
    git_commit(repo, {"requirements.txt": good_requirements,
                      "app.py": good_code.replace("on port", "back on port")}, owner, "fixed")
    fixed = push(owner, repo)
    assert fixed.returncode == 0, fixed.stderr
    assert "remote: -----> Using cached virtualenv (dependencies unchanged)" in fixed.stderr
    assert_launched(fixed.stderr, app, current + 1)
    assert builder_platform.get(app).text.endswith("back on port 5000\n")
