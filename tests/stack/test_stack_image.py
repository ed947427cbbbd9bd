"""The stack image carries the runtimes the built-in buildpacks need (builds run in it)."""

from __future__ import annotations


def sh(runner, images, script, **kwargs):
    return runner.run(images.stack, ["bash", "-c", script], **kwargs)


def test_python_venv_and_pip_work(runner, images):
    code, out = sh(runner, images, "python3 --version && python3 -m venv /tmp/venv "
                                   "&& /tmp/venv/bin/pip --version "
                                   "&& /tmp/venv/bin/python -c 'import ensurepip, sqlite3, ssl'")
    assert code == 0, out
    assert "Python 3." in out
    assert "pip " in out and "/tmp/venv/" in out


def test_node_and_npm_run(runner, images):
    code, out = sh(runner, images, "node -e 'console.log(\"node\", 6*7)' && npm --version "
                                   "&& cd /tmp && npm init -y >/dev/null && test -f package.json && echo ok")
    assert code == 0, out
    assert "node 42" in out
    assert out.strip().endswith("ok")


def test_bash_curl_git_and_ca_certificates(runner, images):
    code, out = sh(runner, images,
                   "bash --version | head -1; curl --version | head -1; git --version; "
                   "tar --version | head -1; gzip --version | head -1; "
                   "test -s /etc/ssl/certs/ca-certificates.crt && echo bundle-ok; "
                   "python3 -c 'import ssl; print(\"cas\", len(ssl.create_default_context().get_ca_certs()))'")
    assert code == 0, out
    for word in ("GNU bash", "curl ", "git version", "tar (GNU tar)", "gzip ", "bundle-ok"):
        assert word in out, out
    cas = int(out.split("cas ")[1].split()[0])
    assert cas > 50, out


def test_environment_and_default_command(docker_client, images):
    config = docker_client.images.get(images.stack).attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["LANG"] == "C.UTF-8"
    assert "/usr/bin" in env["PATH"] and "/usr/local/bin" in env["PATH"]
    assert config["Cmd"] == ["bash"]


def test_utf8_and_runs_as_root(runner, images):
    code, out = sh(runner, images, "id -u; python3 -c 'import sys; print(sys.getfilesystemencoding())'")
    assert code == 0, out
    assert out.split() == ["0", "utf-8"]


def test_caches_and_package_lists_are_not_shipped(runner, images):
    code, out = sh(runner, images, "ls -A /var/lib/apt/lists /var/cache/apt/archives "
                                   "| grep -v -e partial -e : -e '^$' || true; ls /usr/share/doc | wc -l")
    assert code == 0, out
    assert out.split() == ["0"], out
