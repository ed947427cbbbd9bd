"""`git push deis master` for real: git over SSH to the builder, a build in the Docker Engine, a
release deployed by the controller and served by nginx; and every way a push can fail leaving the
running release and the branch as they were."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time

from tests.builder.conftest import (
    BUILDER_DOCKERFILE,
    BUILDER_ROOT,
    BUILDER_WEB_PROCFILE,
    git_commit,
    git_make_repo,
    git_remote_sha,
)


def push(user, repo, *args):
    return user.git("push", "deis", *(args or ("master",)), cwd=repo)


def releases(user, app):
    return [(r["version"], r.get("failed")) for r in user.api.get(f"/v1/apps/{app}/releases").json()["results"]]


def test_dockerfile_app_is_built_deployed_and_served_then_a_code_change_too(
        builder_platform, builder_owner, git_dockerfile_app):
    app, repo = git_dockerfile_app
    started = time.monotonic()
    first = push(builder_owner, repo)
    first_seconds = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    out = first.stderr
    assert "remote: -----> Building Docker image" in out
    assert "remote: -----> Procfile declares types -> web" in out
    assert "remote: -----> Launching... done, v2" in out
    assert f"remote:        http://{app}.localhost" in out
    assert out.index("Building Docker image") < out.index("Procfile declares") < out.index("Launching")
    answer = builder_platform.get(app, "/index.html")
    assert answer.status_code == 200 and answer.text == "hello v1\n"
    sha1 = git_remote_sha(builder_platform, app)
    assert sha1 == builder_owner.git("rev-parse", "HEAD", cwd=repo).stdout.strip()

    sha2 = git_commit(repo, {"index.html": "hello v2\n"}, builder_owner)
    started = time.monotonic()
    second = push(builder_owner, repo)
    second_seconds = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert "Launching... done, v3" in second.stderr
    assert builder_platform.get(app, "/index.html").text == "hello v2\n"
    assert git_remote_sha(builder_platform, app) == sha2
    release = builder_owner.api.get(f"/v1/apps/{app}/releases/v3").json()
    assert release["summary"] == f"{builder_owner.name} deployed {sha2[:7]}"
    ran = builder_owner.api.post(f"/v1/apps/{app}/run", json={"command": "echo $GIT_SHA"})
    assert ran.status_code == 200 and ran.json() == [0, f"{sha2}\n"]
    print(f"\nfirst push {first_seconds:.1f}s, second push {second_seconds:.1f}s")


def test_a_dockerfile_that_does_not_build_changes_nothing(builder_platform, builder_owner, git_dockerfile_app):
    app, repo = git_dockerfile_app
    assert push(builder_owner, repo).returncode == 0
    good = git_remote_sha(builder_platform, app)
    git_commit(repo, {"Dockerfile": BUILDER_DOCKERFILE.replace("WORKDIR /srv", "RUN echo broken step; exit 3"),
                      "index.html": "never served\n"}, builder_owner)
    broken = push(builder_owner, repo)
    assert broken.returncode != 0
    assert "remote: !     Build failed: docker build:" in broken.stderr
    assert "returned a non-zero code: 3" in broken.stderr
    assert "remote:        broken step" in broken.stderr  # the build's own output streamed
    assert "pre-receive hook declined" in broken.stderr
    assert git_remote_sha(builder_platform, app) == good
    assert builder_platform.get(app, "/index.html").text == "hello v1\n"
    assert releases(builder_owner, app)[0][0] == 2  # no release was made
    # The failed build is kept with its log for `deis builds:info`; the good one has its log too.
    builds = builder_owner.api.get(f"/v1/apps/{app}/builds").json()["results"]
    assert [b["failed"] for b in builds] == [True, False]
    failed = builder_owner.api.get(f"/v1/apps/{app}/builds/{builds[0]['uuid']}").json()
    assert "broken step" in failed["log"] and "returned a non-zero code: 3" in failed["log"]
    good_build = builder_owner.api.get(f"/v1/apps/{app}/builds/{builds[1]['uuid']}").json()
    assert "-----> Building Docker image" in good_build["log"]


def test_a_release_that_never_becomes_healthy_is_refused_and_the_old_one_keeps_serving(
        builder_platform, builder_owner, git_dockerfile_app):
    app, repo = git_dockerfile_app
    assert push(builder_owner, repo).returncode == 0
    good = git_remote_sha(builder_platform, app)
    git_commit(repo, {"Procfile": "web: echo cannot start on $PORT; exit 1\n"}, builder_owner)
    failed = push(builder_owner, repo)
    assert failed.returncode != 0
    assert "remote: !     v3 did not become healthy: web.1 exited with code 1" in failed.stderr, failed.stderr
    assert "Launching... done" not in failed.stderr
    assert git_remote_sha(builder_platform, app) == good
    assert builder_platform.get(app, "/index.html").text == "hello v1\n"
    assert releases(builder_owner, app)[0] == (3, True)
    failure = builder_owner.api.get(f"/v1/apps/{app}/releases/v3").json()["failure"]
    assert "cannot start on 8080" in failure  # the app's last log lines, kept with the release
    assert "remote:          cannot start on 8080" in failed.stderr  # and shown to the person pushing


def test_a_bad_procfile_rejects_the_push_naming_the_line(builder_platform, builder_owner, git_dockerfile_app):
    app, repo = git_dockerfile_app
    git_commit(repo, {"Procfile": "web: python3 -m http.server\n<<<<<<< HEAD\n"}, builder_owner)
    refused = push(builder_owner, repo)
    assert refused.returncode != 0
    assert "remote: !     Build failed: Procfile line 2" in refused.stderr
    assert git_remote_sha(builder_platform, app) is None


def test_two_pushes_to_one_app_at_once_queue_and_never_mix(builder_platform, builder_owner, tmp_path):
    """The first push builds (slowly) while the second waits; the second is then refused because the
    branch moved under it. The branch, the release and what is served all agree afterwards."""
    owner = builder_owner
    app = builder_platform.app(owner)
    slow = BUILDER_DOCKERFILE.replace("WORKDIR /srv", "RUN sleep 4\nWORKDIR /srv")
    base = git_make_repo(tmp_path / "base", {"Dockerfile": slow, "Procfile": BUILDER_WEB_PROCFILE,
                                             "index.html": "base\n"}, owner, app)
    assert push(owner, base).returncode == 0
    clones = []
    for name in ("one", "two"):
        assert owner.git("clone", "-q", "-o", "deis", owner.remote(app), str(tmp_path / name)).returncode == 0
        clones.append((tmp_path / name, git_commit(tmp_path / name, {"index.html": f"{name}\n"}, owner)))
    results = {}

    def run(name, repo):
        results[name] = push(owner, repo)

    first = threading.Thread(target=run, args=("one", clones[0][0]))
    first.start()
    time.sleep(1.5)  # the first push is building now (RUN sleep 4)
    second = threading.Thread(target=run, args=("two", clones[1][0]))
    second.start()
    first.join(300)
    second.join(300)
    one, two = results["one"], results["two"]
    assert one.returncode == 0, one.stderr
    assert "another push to" in two.stderr and "is building; waiting..." in two.stderr
    assert two.returncode != 0
    assert "changed while this push waited" in two.stderr
    assert "Build failed" not in two.stderr and "Launching" not in two.stderr  # nothing built for it
    assert git_remote_sha(builder_platform, app) == clones[0][1]
    assert builder_platform.get(app, "/index.html").text == "one\n"
    assert [v for v, _ in releases(owner, app)][:2] == [3, 2]

    # The loser pulls and pushes again: now it lands, on top of the winner.
    assert owner.git("pull", "-q", "--no-rebase", "-X", "ours", "deis", "master", cwd=clones[1][0]).returncode == 0
    again = push(owner, clones[1][0])
    assert again.returncode == 0, again.stderr
    assert builder_platform.get(app, "/index.html").text == "two\n"


def test_empty_repository_then_force_push(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app = builder_platform.app(owner)
    repo = git_make_repo(tmp_path / "empty", {}, owner, app)  # one commit, no files
    empty = push(owner, repo)
    assert empty.returncode != 0
    assert "remote: !     The pushed commit has no files: there is nothing to build." in empty.stderr
    assert git_remote_sha(builder_platform, app) is None

    git_commit(repo, {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE,
                      "index.html": "first\n"}, owner)
    assert push(owner, repo).returncode == 0
    # Rewrite history and force it: the rewritten commit is deployed.
    owner.git("checkout", "-q", "--orphan", "rewritten", cwd=repo)
    sha = git_commit(repo, {"index.html": "rewritten\n"}, owner, "rewritten history")
    assert push(owner, repo, "rewritten:master").returncode != 0  # not a fast-forward: git refuses
    forced = push(owner, repo, "--force", "rewritten:master")
    assert forced.returncode == 0, forced.stderr
    assert git_remote_sha(builder_platform, app) == sha
    assert builder_platform.get(app, "/index.html").text == "rewritten\n"


def test_binary_file_of_some_megabytes_and_a_submodule_entry(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app = builder_platform.app(owner)
    blob = os.urandom(6 * 1024 * 1024)
    repo = git_make_repo(tmp_path / "bin", {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE,
                                            "index.html": "bin\n", "data/blob.bin": blob,
                                            ".gitmodules": '[submodule "vendor/lib"]\n\tpath = vendor/lib\n'
                                                           "\turl = https://example.com/lib.git\n"}, owner, app)
    some_commit = owner.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    assert owner.git("update-index", "--add", "--cacheinfo", f"160000,{some_commit},vendor/lib",
                     cwd=repo).returncode == 0
    assert owner.git("commit", "-q", "-m", "add a submodule", cwd=repo).returncode == 0
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote:        Submodule vendor/lib is not fetched" in pushed.stderr
    served = builder_platform.get(app, "/data/blob.bin")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == hashlib.sha256(blob).hexdigest()


def test_local_build_of_a_directory_without_ssh(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app = builder_platform.app(owner)
    source = tmp_path / "local"
    source.mkdir()
    (source / "Dockerfile").write_text(BUILDER_DOCKERFILE)
    (source / "Procfile").write_text(BUILDER_WEB_PROCFILE)
    (source / "index.html").write_text("built locally\n")
    env = {**os.environ, "DEIS_CONTROLLER_URL": builder_platform.live.url,
           "DEIS_DATA_DIR": str(builder_platform.data_dir)}
    done = subprocess.run([sys.executable, "-m", "deis.builder", "build", str(source), "--app", app,
                           "--user", owner.name], env=env, capture_output=True, text=True, cwd=BUILDER_ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-----> Launching... done, v2" in done.stdout
    assert builder_platform.get(app, "/index.html").text == "built locally\n"

    stranger = builder_platform.user("stranger")
    refused = subprocess.run([sys.executable, "-m", "deis.builder", "build", str(source), "--app", app,
                              "--user", stranger.name], env=env, capture_output=True, text=True,
                             cwd=BUILDER_ROOT, timeout=120)
    assert refused.returncode == 1
    assert f"You may not push to {app} (ask its owner, {owner.name})" in refused.stderr


def test_procfile_only_buildpack_app_is_built_and_served(builder_platform, builder_owner, tmp_path):
    """No Dockerfile: the buildpacks build it (the null buildpack: nothing to compile, no network)."""
    owner = builder_owner
    app = builder_platform.app(owner)
    repo = git_make_repo(tmp_path / app, {"Procfile": "web: python3 -m http.server $PORT\n", ".null": "",
                                          "index.html": "from a slug\n", "notes/big.log": "x" * 1000,
                                          ".slugignore": "notes/\n"}, owner, app)
    pushed = push(owner, repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "Building Docker image" not in pushed.stderr
    assert "remote: -----> Removed what .slugignore lists: notes" in pushed.stderr
    assert "remote: -----> Procfile declares types -> web" in pushed.stderr
    assert "remote: -----> Launching... done, v2" in pushed.stderr
    assert builder_platform.get(app, "/index.html").text == "from a slug\n"
    assert builder_platform.get(app, "/notes/big.log").status_code == 404
    ran = owner.api.post(f"/v1/apps/{app}/run", json={"command": "echo $PORT $GIT_SHA; id -un"})
    assert ran.status_code == 200
    assert ran.json() == [0, f"5000 {git_remote_sha(builder_platform, app)}\napp\n"]


def test_a_tree_with_nothing_to_build_says_so(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app = builder_platform.app(owner)
    repo = git_make_repo(tmp_path / app, {"README.md": "just words\n"}, owner, app)
    refused = push(owner, repo)
    assert refused.returncode != 0
    assert "remote: !     Build failed: no buildpack applies to this app" in refused.stderr, refused.stderr
    assert git_remote_sha(builder_platform, app) is None


def test_a_push_of_hundreds_of_megabytes(builder_platform, builder_owner, tmp_path):
    """200 MB of incompressible files through git, SSH, the checkout and a buildpack slug."""
    owner = builder_owner
    app = builder_platform.app(owner)
    files = {"Procfile": "web: python3 -m http.server $PORT\n", ".null": "", "index.html": "big\n"}
    blobs = {f"assets/part{i}.bin": os.urandom(25 * 1024 * 1024) for i in range(8)}
    repo = git_make_repo(tmp_path / app, {**files, **blobs}, owner, app)
    started = time.monotonic()
    pushed = push(owner, repo)
    seconds = time.monotonic() - started
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "remote: -----> Launching... done, v2" in pushed.stderr
    served = builder_platform.get(app, "/assets/part7.bin")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).digest() == hashlib.sha256(blobs["assets/part7.bin"]).digest()
    print(f"\n200 MB push served after {seconds:.1f}s")


def test_concurrent_pushes_to_ten_apps_each_land_on_their_own_app(builder_platform, builder_owner, tmp_path):
    """Ten apps pushed at once: every push builds, is rolled out by the deployer (which takes four
    apps at a time, the rest queue) and serves its own page; the push streams the rollout's steps."""
    owner = builder_platform.user("fleet")
    apps = [builder_platform.app(owner, "ten") for _ in range(10)]
    repos = {app: git_make_repo(tmp_path / app, {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE,
                                                 "index.html": f"page of {app}\n"}, owner, app) for app in apps}
    results = {}
    threads = [threading.Thread(target=lambda a=app: results.__setitem__(a, push(owner, repos[a]))) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    for app in apps:
        pushed = results[app]
        assert pushed.returncode == 0, (app, pushed.stderr[-2000:])
        assert "remote: -----> Launching... done, v2" in pushed.stderr
        assert "starting web.1 of v2; health check: GET / on port 8080" in pushed.stderr
        assert builder_platform.get(app, "/index.html").text == f"page of {app}\n"
        assert [(v, f) for v, f in releases(owner, app)] == [(2, False), (1, False)]
        assert owner.api.get(f"/v1/apps/{app}/releases/v2").json()["state"] == "deployed"
