"""The run image starts a slug as Heroku does: user app in /app, .profile.d, .profile, bash -c."""

from __future__ import annotations

import time


def test_runs_unprivileged_in_app(runner, images):
    script = ("id -u; id -g; id -un; pwd; echo $HOME; touch /app/w && echo app-writable; "
              "touch /etc/x 2>/dev/null || echo etc-readonly")
    code, out = runner.run(images.run, [script])
    assert code == 0, out
    assert out.split() == ["1000", "1000", "app", "/app", "/app", "app-writable", "etc-readonly"]


def test_image_config(docker_client, images):
    config = docker_client.images.get(images.run).attrs["Config"]
    assert config["User"] == "app"
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["/usr/local/bin/deis-launch"]
    assert not config["Cmd"]


def test_profile_d_exports_are_seen_in_order_then_profile(runner, images):
    files = {
        ".profile.d/a.sh": "export GREETING=hello\nexport ORDER=a\n",
        ".profile.d/b.sh": "export ORDER=\"$ORDER,b\"\n",
        ".profile.d/not-a-script.txt": "export ORDER=wrong\n",
        ".profile": "export ORDER=\"$ORDER,profile\"\n",
    }
    code, out = runner.run(images.run, ['echo "$GREETING $ORDER"'], files=files)
    assert code == 0, out
    assert out.strip() == "hello a,b,profile"


def test_profile_d_can_put_slug_binaries_on_path(runner, images):
    files = {
        ".profile.d/path.sh": 'export PATH="$HOME/bin:$PATH"\n',
        "bin/hello": ("#!/bin/bash\necho \"hello from $(pwd)\"\n", 0o755),
    }
    code, out = runner.run(images.run, ["hello"], files=files)
    assert code == 0, out
    assert out.strip() == "hello from /app"


def test_without_profile_files(runner, images):
    code, out = runner.run(images.run, ["echo plain"])
    assert (code, out.strip()) == (0, "plain")


def test_command_runs_under_bash_c(runner, images):
    code, out = runner.run(images.run, ["echo $((1+1)) | tr 2 X; [[ -n $BASH_VERSION ]] && echo bash"])
    assert code == 0, out
    assert out.split() == ["X", "bash"]


def test_arguments_are_joined_into_one_command_line(runner, images):
    code, out = runner.run(images.run, ["python3", "-c", "'import sys; print(sys.argv[1:])'", "a", "b"])
    assert code == 0, out
    assert out.strip() == "['a', 'b']"


def test_comment_after_command_is_dropped_by_the_shell(runner, images):
    code, out = runner.run(images.run, ["echo web # a comment"])
    assert (code, out.strip()) == (0, "web")


def test_command_replaces_the_launcher(runner, images):
    # exec all the way down: no launcher shell stays between the container's init and the command.
    code, out = runner.run(images.run, ["echo $$"])
    assert (code, out.strip()) == (0, "1")


def test_environment_reaches_the_command(runner, images):
    env = {"PORT": "5000", "DEIS_APP": "sleepy-owl", "DEIS_RELEASE": "v7", "WITH_SPACES": "a b  c"}
    code, out = runner.run(images.run, ['echo "$PORT|$DEIS_APP|$DEIS_RELEASE|$WITH_SPACES"'],
                           environment=env)
    assert code == 0, out
    assert out.strip() == "5000|sleepy-owl|v7|a b  c"


def test_profile_d_sees_config_and_may_derive_from_it(runner, images):
    files = {".profile.d/url.sh": 'export BIND="0.0.0.0:$PORT"\n'}
    code, out = runner.run(images.run, ['echo "$BIND"'], files=files, environment={"PORT": "5123"})
    assert (code, out.strip()) == (0, "0.0.0.0:5123")


def test_exit_codes_propagate(runner, images):
    assert runner.run(images.run, ["exit 3"])[0] == 3
    assert runner.run(images.run, ["false"])[0] == 1
    assert runner.run(images.run, ["no-such-command-here"])[0] == 127


def test_no_arguments_gives_a_bash_shell(runner, images):
    container = runner.create(images.run, stdin_open=True)
    try:
        sock = container.attach_socket(params={"stdin": 1, "stream": 1})
        container.start()
        sock._sock.sendall(b'echo "shell in $PWD as $(id -un)"; exit 7\n')
        sock._sock.shutdown(1)
        code = container.wait(timeout=60)["StatusCode"]
        out = container.logs().decode()
        sock.close()
    finally:
        container.remove(force=True)
    assert code == 7, out
    assert "shell in /app as app" in out


def test_python_web_process_serves_on_port(runner, images, docker_client):
    files = {"server.py": (
        "import http.server, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok ' + os.getcwd().encode())\n"
        "http.server.HTTPServer(('', int(os.environ['PORT'])), H).serve_forever()\n")}
    # init=True (Docker's tini) as PID 1: a process without a SIGTERM handler (this server) would
    # otherwise ignore `docker stop`'s SIGTERM, as PID 1 does, and only die of SIGKILL.
    container = runner.create(images.run, ["python3 server.py"], files=files,
                              environment={"PORT": "5000"}, init=True)
    try:
        container.start()
        for _ in range(100):
            code, out = container.exec_run(["curl", "-sf", "http://127.0.0.1:5000/"])
            if code == 0:
                break
            time.sleep(0.1)
        assert (code, out) == (0, b"ok /app")
        container.stop(timeout=5)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 143  # SIGTERM, not SIGKILL's 137
    finally:
        container.remove(force=True)
