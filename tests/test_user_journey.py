"""The first ten minutes of a user (../shared/user-journey.md), all real: the platform as `make up`
starts it, the `deis` command, git over SSH to the builder, a Flask app built with pip, nginx.

Only the ports, data directory and label namespace are this test's own, so it neither relies on nor
trips over a platform already running on the machine.
"""

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import docker
import requests

from deis.scheduler.docker import purge
from tests.cli.conftest import Deis
from tests.test_platform import platform, platform_env

FLASK_APP = Path(__file__).parent / "builder" / "apps" / "flask"


def until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    return check()


def test_first_ten_minutes(tmp_path):
    env = platform_env(tmp_path / "platform")
    client, namespace = docker.from_env(), env["DEIS_DOCKER_NAMESPACE"]
    url = f"http://127.0.0.1:{env['DEIS_CONTROLLER_PORT']}"
    router = f"http://127.0.0.1:{env['DEIS_ROUTER_PORT']}/"
    home, work = tmp_path / "home", tmp_path / "myapp"
    (home / ".ssh").mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh" / "id_ed25519")], check=True)
    shutil.copytree(FLASK_APP, work)
    ssh = (f"ssh -F /dev/null -i {home}/.ssh/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes "
           "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
    git_env = {**Deis(home, work, url).env(), "GIT_SSH_COMMAND": ssh, "GIT_AUTHOR_NAME": "Alice",
               "GIT_AUTHOR_EMAIL": "alice@example.com", "GIT_COMMITTER_NAME": "Alice",
               "GIT_COMMITTER_EMAIL": "alice@example.com"}

    def git(*args):
        return subprocess.run(["git", *args], cwd=work, env=git_env, capture_output=True, text=True, timeout=600)

    app_name = f"journey-{uuid.uuid4().hex[:6]}"
    deis = Deis(home, work, url)
    builder_port = env["DEIS_BUILDER_PORT"]
    try:
        up = platform("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Deis is up." in up.stdout and f"Next: deis register {url}" in up.stdout

        deis.ok("register", url, "--username", "alice", "--password", "s3cret-pass", "--email", "a@example.com")
        assert "done" in deis.ok("keys:add", str(home / ".ssh" / "id_ed25519.pub")).out
        assert git("init", "-q", "-b", "master").returncode == 0
        git("add", ".")
        git("commit", "-q", "-m", "my app")
        created = deis.ok("create", app_name, DEIS_BUILDER_PORT=builder_port).out
        assert f"created {app_name}" in created and "Git remote deis added" in created

        pushed = git("push", "deis", "master")
        assert pushed.returncode == 0, pushed.stderr
        out = pushed.stderr
        for step in ("remote: -----> Python app detected", "remote: -----> Installing requirements with pip",
                     "Procfile declares types -> web",
                     # the rollout's steps, the check named with how to change it
                     "remote:        starting web.1 of v2; health check: GET / on port 5000 must answer within",
                     "set HEALTHCHECK_URL=/health", "remote: -----> Launching... done, v2",
                     f"remote:        http://{app_name}.localhost"):
            assert step in out, (step, out)
        page = requests.get(router, headers={"Host": f"{app_name}.localhost"}, timeout=10)
        assert page.status_code == 200, page.text

        scaled = deis.ok("scale", "web=2", "-a", app_name).out
        assert "Scaling processes... but first, coffee!" in scaled and "done in" in scaled
        ps = deis.ok("ps", "-a", app_name).out
        assert f"=== {app_name} Processes" in ps and "web.1 up (v2)" in ps and "web.2 up (v2)" in ps

        configured = deis.ok("config:set", "GREETING=hello", "-a", app_name).out
        assert "v3" in configured
        assert requests.get(router, headers={"Host": f"{app_name}.localhost"}, timeout=10).status_code == 200
        ran = deis("run", "-a", app_name, "echo $GREETING from $DEIS_RELEASE; exit 3")
        assert ran.code == 3 and "hello from v3" in ran.out
        assert until(lambda: "deis[api]" in deis.ok("logs", "-a", app_name).out)
        releases = deis.ok("releases", "-a", app_name).out
        assert "v3" in releases and "alice added GREETING" in releases and "alice deployed" in releases
        rolled = deis.ok("rollback", "v2", "-a", app_name)
        assert "v4" in rolled.text
        assert "GREETING" not in deis.ok("config", "-a", app_name).out

        # A push that cannot build: a clear reason, non-zero, the running release keeps serving.
        (work / "requirements.txt").write_text("Flask==99\n")
        git("commit", "-q", "-am", "break it")
        broken = git("push", "deis", "master")
        assert broken.returncode != 0
        assert "remote: !     Build failed" in broken.stderr and "Flask==99" in broken.stderr, broken.stderr
        assert requests.get(router, headers={"Host": f"{app_name}.localhost"}, timeout=10).status_code == 200
        assert "failed" in deis.ok("builds", "-a", app_name).out

        # Bob may use the app once shared, not destroy it; an outsider is told whom to ask.
        Deis(tmp_path / "bob", work, url).ok("register", url, "--username", "bob", "--password", "s3cret-pass",
                                              "--email", "b@example.com")
        bob = Deis(tmp_path / "bob", work, url)
        refused = bob.fails("scale", "web=1", "-a", app_name)
        assert "ask its owner, alice" in refused.err and "Traceback" not in refused.text
        deis.ok("perms:create", "bob", "-a", app_name)
        bob.ok("scale", "web=1", "-a", app_name)
        assert "may not destroy" in bob.fails("destroy", "-a", app_name, "--confirm", app_name).err

        deis.ok("destroy", "-a", app_name, "--confirm", app_name)
        assert requests.get(router, headers={"Host": f"{app_name}.localhost"}, timeout=10).status_code == 404
        # Gone for users at once; the deployer removes its processes and images right after.
        def left():
            return client.containers.list(all=True, filters={"label": f"{namespace}.app={app_name}"}, ignore_removed=True) + \
                [i for i in client.images.list() if any(t.startswith(f"deis-apps/{app_name}:") for t in i.tags)]

        deadline = time.monotonic() + 15
        while left() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert left() == []
    finally:
        platform("down", env)
        purge(client, namespace)
        for image in client.images.list(name=f"deis-apps/{app_name}"):
            client.images.remove(image.id, force=True)
