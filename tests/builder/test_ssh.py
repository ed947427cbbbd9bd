"""The builder's SSH server with the real ssh and git clients: who may push and clone, what else is
refused, and how the refusals read."""

from __future__ import annotations

import stat
import subprocess

from deis.builder.controller import Hooks
from deis.builder.server import BuilderServer, host_key, run_in_thread
from tests.builder.conftest import (
    BUILDER_DOCKERFILE,
    BUILDER_WEB_PROCFILE,
    GitUser,
    builder_new_key,
    git_commit,
    git_make_repo,
    git_remote_sha,
)
from tests.conftest import free_port

SERVER = "git@127.0.0.1"


def deployed_app(platform, owner, tmp_path, text="hello\n"):
    app = platform.app(owner)
    repo = git_make_repo(tmp_path / app, {"Dockerfile": BUILDER_DOCKERFILE, "Procfile": BUILDER_WEB_PROCFILE,
                                          "index.html": text}, owner, app)
    pushed = owner.git("push", "deis", "master", cwd=repo)
    assert pushed.returncode == 0, pushed.stderr
    return app, repo


def test_a_key_nobody_registered_is_denied(builder_platform, tmp_path):
    nobody = builder_platform.user("nokey", key=False)
    app = builder_platform.app(nobody)
    repo = git_make_repo(tmp_path / "r", {"index.html": "x"}, nobody, app)
    pushed = nobody.git("push", "deis", "master", cwd=repo)
    assert pushed.returncode != 0
    assert "Permission denied (publickey)" in pushed.stderr
    assert git_remote_sha(builder_platform, app) is None


def test_shell_logins_and_other_commands_are_refused(builder_platform, builder_owner):
    shell = builder_owner.ssh(SERVER)
    assert shell.returncode == 1
    assert f"Hi {builder_owner.name}! This is the Deis builder: it accepts git only." in shell.stderr
    for command in ("ls /", "git-upload-archive 'x.git'", "bash -c 'git-receive-pack x.git'",
                    "git-receive-pack 'a.git' ; id"):
        other = builder_owner.ssh(SERVER, command)
        assert other.returncode == 1, command
        assert "The Deis builder runs only git push and git clone/fetch" in other.stderr, command
    sneaky = builder_owner.ssh(SERVER, "git-receive-pack '../../etc.git'")
    assert sneaky.returncode == 1 and "is not allowed" in sneaky.stderr
    sftp = builder_owner.ssh("-s", SERVER, "sftp")
    assert sftp.returncode != 0


def test_an_unknown_app_is_refused(builder_platform, builder_owner, tmp_path):
    repo = git_make_repo(tmp_path / "r", {"index.html": "x"}, builder_owner, "no-such-app")
    pushed = builder_owner.git("push", "deis", "master", cwd=repo)
    assert pushed.returncode != 0
    assert "No app named 'no-such-app'." in pushed.stderr
    assert not (builder_platform.data_dir / "builder" / "repos" / "no-such-app.git").exists()
    cloned = builder_owner.git("clone", builder_owner.remote("no-such-app"), str(tmp_path / "c"))
    assert cloned.returncode != 0 and "No app named 'no-such-app'." in cloned.stderr


def test_owner_and_collaborator_push_and_clone_a_stranger_does_neither(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app, _ = deployed_app(builder_platform, owner, tmp_path)
    sha = git_remote_sha(builder_platform, app)
    collaborator, stranger = builder_platform.user("collab"), builder_platform.user("stranger")
    assert owner.api.post(f"/v1/apps/{app}/perms", json={"username": collaborator.name}).status_code == 201

    for user in (owner, collaborator):
        target = tmp_path / f"clone-{user.name}"
        cloned = user.git("clone", "-o", "deis", user.remote(app), str(target))
        assert cloned.returncode == 0, cloned.stderr
        assert (target / "index.html").read_text() == "hello\n"
        assert user.git("rev-parse", "HEAD", cwd=target).stdout.strip() == sha

    # scp-like remote (`git@host:app.git`, no leading slash) and an unquoted path work too.
    listed = collaborator.git("ls-remote", f"{SERVER}:{app}.git")
    assert listed.returncode == 0 and f"{sha}\trefs/heads/master" in listed.stdout
    raw = collaborator.ssh(SERVER, f"git-upload-pack {app}.git")
    assert f"{sha} HEAD" in raw.stdout

    collab_repo = tmp_path / f"clone-{collaborator.name}"
    collab_sha = git_commit(collab_repo, {"index.html": "by the collaborator\n"}, collaborator)
    pushed = collaborator.git("push", "deis", "master", cwd=collab_repo)
    assert pushed.returncode == 0, pushed.stderr
    assert builder_platform.get(app, "/index.html").text == "by the collaborator\n"

    stranger_repo = git_make_repo(tmp_path / "stranger", {"index.html": "defaced\n"}, stranger, app)
    refused = stranger.git("push", "--force", "deis", "master", cwd=stranger_repo)
    assert refused.returncode != 0
    assert f"You may not push to {app} (ask its owner, {owner.name})." in refused.stderr
    assert git_remote_sha(builder_platform, app) == collab_sha
    assert builder_platform.get(app, "/index.html").text == "by the collaborator\n"
    cloned = stranger.git("clone", stranger.remote(app), str(tmp_path / "stolen"))
    assert cloned.returncode != 0 and f"ask its owner, {owner.name}" in cloned.stderr


def test_other_branches_tags_and_deletions_are_refused(builder_platform, builder_owner, tmp_path):
    owner = builder_owner
    app, repo = deployed_app(builder_platform, owner, tmp_path)
    sha = git_remote_sha(builder_platform, app)
    git_commit(repo, {"index.html": "feature\n"}, owner)
    for refspec in ("HEAD:feature", "HEAD:refs/tags/v1"):
        refused = owner.git("push", "deis", refspec, cwd=repo)
        assert refused.returncode != 0, refspec
        assert "remote: !     " in refused.stderr and "push with `git push deis master`" in refused.stderr
        assert "pre-receive hook declined" in refused.stderr
    deleted = owner.git("push", "deis", ":master", cwd=repo)
    assert deleted.returncode != 0
    assert "remote: !     Deleting master of" in deleted.stderr
    listed = owner.git("ls-remote", owner.remote(app)).stdout
    assert listed.split() == [sha, "HEAD", sha, "refs/heads/master"]
    assert builder_platform.get(app, "/index.html").text == "hello\n"

    # `main` is the other branch a push may deploy from; a clone then checks it out.
    main = owner.git("push", "deis", "HEAD:main", cwd=repo)
    assert main.returncode == 0, main.stderr
    assert builder_platform.get(app, "/index.html").text == "feature\n"
    cloned = owner.git("clone", owner.remote(app), str(tmp_path / "after-main"))
    assert cloned.returncode == 0 and (tmp_path / "after-main" / "index.html").read_text() == "feature\n"


def test_cloning_an_app_never_pushed_says_so(builder_platform, builder_owner, tmp_path):
    app = builder_platform.app(builder_owner)
    cloned = builder_owner.git("clone", builder_owner.remote(app), str(tmp_path / "c"))
    assert cloned.returncode != 0
    assert f"{app} has nothing to clone yet: deploy it first with `git push deis master`." in cloned.stderr


def test_host_key_is_made_once_and_kept_private(builder_platform):
    path = builder_platform.data_dir / "builder" / "ssh_host_ed25519_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert host_key(builder_platform.data_dir).public_data == host_key(builder_platform.data_dir).public_data
    scanned = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(builder_platform.ssh_port), "127.0.0.1"],
                             capture_output=True, text=True, timeout=30)
    assert (path.parent / "ssh_host_ed25519_key.pub").read_text().split()[1] in scanned.stdout


def test_an_unreachable_controller_denies_keys_with_a_reason(tmp_path):
    server = BuilderServer(tmp_path, Hooks(f"http://127.0.0.1:{free_port()}", "key"), host="127.0.0.1", port=0)
    stop = run_in_thread(server)
    try:
        key = tmp_path / "id_ed25519"
        builder_new_key(key)
        user = GitUser(api=None, key=key, ssh_port=server.port, home=tmp_path, log_level="INFO")
        denied = user.ssh(SERVER, "git-upload-pack 'x.git'")
        assert denied.returncode == 255
        assert "The Deis builder cannot check keys right now" in denied.stderr
        assert "Permission denied (publickey)" in denied.stderr
    finally:
        stop()
