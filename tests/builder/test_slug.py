"""Buildpack builds for real: each test app is built in a container (PyPI and npm through the
proxy), then its image is run as the scheduler would run it and asked for a page over HTTP."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from deis.builder import BuildError, BuildLimits
from deis.builder.procfile import ProcfileError
from deis.builder.slug import (
    apply_slugignore,
    build_environment,
    build_slug,
    buildpack_plan,
)

APPS = Path(__file__).resolve().parent / "apps"
THIRD_PARTY = APPS / "buildpack-null"


def build_container_gone(client, app: str, wait: float = 15.0) -> bool:
    """The build container is removed in the background once the build ends: wait for it."""
    deadline = time.monotonic() + wait
    while client.containers.list(all=True, sparse=True, filters={"name": f"deis-build-{app}"}):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# ---- fixtures: a Docker client, builds that clean up after themselves, a way to serve an image ----

@pytest.fixture(scope="module")
def slug_client():
    import docker

    from deis.stack import ensure_images

    client = docker.from_env(timeout=600)
    ensure_images(client)
    yield client
    client.close()


class Builds:
    """Builds copies of the test apps into unique images; every image and cache is removed after."""

    def __init__(self, client, tmp: Path):
        self.client, self.tmp = client, tmp
        self.images: list[str] = []
        self.caches: list[Path] = []

    def source(self, app: str | None = None, files: dict[str, str] | None = None) -> Path:
        dest = self.tmp / f"src-{uuid.uuid4().hex[:8]}"
        if app:
            shutil.copytree(APPS / app, dest, symlinks=True)
        else:
            dest.mkdir()
        for name, text in (files or {}).items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_text(text)
        return dest

    def cache(self, name: str | None = None) -> Path:
        path = self.tmp / f"cache-{name or uuid.uuid4().hex[:8]}"
        if path not in self.caches:
            self.caches.append(path)
        return path

    def build(self, app: str | None = None, files=None, env=None, cache: Path | None = None,
              limits: BuildLimits | None = None, source: Path | None = None):
        """(BuildResult, output lines, seconds); on failure the BuildError carries .lines."""
        name = f"{app or 'app'}-{uuid.uuid4().hex[:8]}"
        image = f"deis-test-apps/{name}:v1"
        self.images.append(image)
        lines: list[str] = []
        started = time.monotonic()
        try:
            result = build_slug(source or self.source(app, files), name, image, env or {},
                                cache or self.cache(), lines.append, limits,
                                labels={"deis.app": name}, client=self.client)
            result.released()  # nothing is deployed here: the cache may be saved at once
        except BuildError as e:
            e.lines, e.app, e.image = lines, name, image
            raise
        return result, lines, time.monotonic() - started

    def cleanup(self):
        for image in self.images:
            with contextlib.suppress(Exception):
                self.client.images.remove(image, force=True)
        for cache in self.caches:
            shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def slug_builds(slug_client, tmp_path_factory):
    builds = Builds(slug_client, tmp_path_factory.mktemp("slug"))
    yield builds
    builds.cleanup()


@pytest.fixture(scope="module")
def slug_timings():
    """Seconds each build took, printed at the end of the module (pytest -s or -rA shows them)."""
    timings: dict[str, float] = {}
    yield timings
    print("\nbuild timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def run_once(client, image: str, command: str, env: dict | None = None, timeout: float = 60):
    """(exit code, output) of `command` run through the image's entrypoint, like a one-off process."""
    container = client.containers.create(image, command=[command], environment=env or {},
                                         name=f"deis-test-slug-{uuid.uuid4().hex[:8]}")
    try:
        container.start()
        code = container.wait(timeout=timeout)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def serving(client, image: str, command: str, env: dict | None = None, timeout: float = 60):
    """The image running `command` with PORT=5000, as the scheduler runs a web process; its URL."""
    container = client.containers.run(image, command=[command],
                                      environment={"PORT": "5000", **(env or {})}, detach=True,
                                      name=f"deis-test-slug-{uuid.uuid4().hex[:8]}")
    try:
        container.reload()
        url = f"http://{container.attrs['NetworkSettings']['IPAddress']}:5000"
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(url + "/", timeout=2)
                break
            except requests.RequestException:
                container.reload()
                if container.status != "running" or time.monotonic() > deadline:
                    raise AssertionError("the web process did not come up:\n"
                                         + container.logs().decode(errors="replace"))
                time.sleep(0.3)
        yield url
    finally:
        container.remove(force=True)


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


# ---- module-scoped builds shared by several tests ---------------------------------------------

@pytest.fixture(scope="module")
def flask_build(slug_builds, slug_timings):
    cache = slug_builds.cache("flask")
    result, lines, seconds = slug_builds.build("flask", cache=cache)
    slug_timings["flask"] = seconds
    return result, lines, cache


@pytest.fixture(scope="module")
def django_build(slug_builds, slug_timings):
    cache = slug_builds.cache("django")
    result, lines, seconds = slug_builds.build("django", cache=cache)
    slug_timings["django"] = seconds
    return result, lines, cache


# ---- Python ------------------------------------------------------------------------------------

def test_flask_app_builds_and_serves(slug_client, flask_build):
    result, lines, _ = flask_build
    assert result.buildpack == "Python"
    assert result.procfile == {"web": "gunicorn app:app --bind 0.0.0.0:$PORT --workers 2"}
    assert "-----> Python app detected" in lines
    assert "-----> Using Python 3.11.2 (runtime.txt asks for 3.11)" in lines
    assert any(line.strip().startswith("Successfully installed") and "Flask-3.0.3" in line
               for line in lines)
    assert not any(line.startswith("::deis::") for line in lines)
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        answer = get(url + "/")
        assert answer.status_code == 200
        assert answer.text == "hello from flask on port 5000\n"


def test_the_image_is_the_run_image_plus_the_slug(slug_client, flask_build):
    result, _, _ = flask_build
    image = slug_client.images.get(result.image)
    config = image.attrs["Config"]
    assert config["User"] == "app"
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["/usr/local/bin/deis-launch"]
    assert not config["Cmd"]
    assert not config.get("Volumes")
    assert "HOME=/app" in config["Env"]
    assert not any(e.split("=")[0] in ("PIP_CERT", "REQUESTS_CA_BUNDLE") for e in config["Env"])
    assert config["Labels"]["deis.app"] == result.image.split("/")[1].split(":")[0]
    run_layers = slug_client.images.get("deis/run:bookworm-1").attrs["RootFS"]["Layers"]
    assert image.attrs["RootFS"]["Layers"][:-1] == run_layers
    code, out = run_once(slug_client, result.image,
                         "id -un; stat -c %U /app /app/.venv /app/app.py; which python; "
                         "ls /tmp/deis-build 2>&1; echo $(ls -A /tmp); echo $(ls -A /app)")
    assert code == 0, out
    lines = out.split("\n")
    assert lines[:5] == ["app", "app", "app", "app", "/app/.venv/bin/python"]
    assert "No such file" in out  # /tmp/deis-build is gone
    assert lines[-3].split() == ["deis-cache", "deis-env"]  # empty mount points, nothing else
    assert set(lines[-2].split()) == {".profile.d", ".venv", "Procfile", "app.py", "requirements.txt",
                                      "runtime.txt"}


def test_second_build_reuses_the_cached_virtualenv(slug_client, slug_builds, flask_build,
                                                   slug_timings):
    _, first_lines, cache = flask_build
    assert "-----> Caching the virtualenv (once the slug is made)" in first_lines
    result, lines, seconds = slug_builds.build("flask", cache=cache)
    slug_timings["flask again (cached)"] = seconds
    assert "-----> Using cached virtualenv (dependencies unchanged)" in lines
    assert not any("Downloading" in line or "Collecting" in line for line in lines)
    code, out = run_once(slug_client, result.image, "python -c 'import flask; print(flask.__name__)'")
    assert (code, out.strip()) == (0, "flask")


def test_changed_requirements_make_a_new_virtualenv(slug_builds, flask_build):
    _, _, cache = flask_build
    source = slug_builds.source("flask")
    (source / "requirements.txt").write_text("Flask==3.0.3\n")  # gunicorn dropped
    _, lines, _ = slug_builds.build(source=source, cache=cache)
    assert "-----> Dependencies changed: making a new virtualenv" in lines
    assert not any("Using cached virtualenv" in line for line in lines)


def test_django_collectstatic_runs_and_the_asset_is_served(slug_client, django_build):
    result, lines, _ = django_build
    assert " !     .python-version asks for Python 3.13, which this stack does not have" in lines
    assert "-----> Using Python 3.11.2 instead (the stack's python3)" in lines
    assert "-----> Running python manage.py collectstatic --noinput" in lines
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert get(url + "/").text == "hello from django\n"
        asset = get(url + "/static/site.css")
        assert asset.status_code == 200
        assert "collected by collectstatic" in asset.text


def test_django_with_collectstatic_disabled_has_no_asset(slug_client, slug_builds, django_build):
    _, _, cache = django_build
    result, lines, _ = slug_builds.build("django", cache=cache, env={"DISABLE_COLLECTSTATIC": "1"})
    assert "-----> Skipping collectstatic (DISABLE_COLLECTSTATIC=1)" in lines
    assert not any("Running python manage.py collectstatic" in line for line in lines)
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert get(url + "/").status_code == 200
        assert get(url + "/static/site.css").status_code == 404


def test_django_collectstatic_failure_fails_the_build(slug_client, slug_builds, django_build):
    _, _, cache = django_build
    source = slug_builds.source("django")
    settings = source / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace('STATIC_ROOT = BASE_DIR / "staticfiles"', ""))
    with pytest.raises(BuildError) as caught:
        slug_builds.build(source=source, cache=cache)
    assert "the Python buildpack failed" in str(caught.value)
    assert any("collectstatic failed" in line for line in caught.value.lines)
    assert any("STATIC_ROOT" in line for line in caught.value.lines)
    assert not slug_client.images.list(name=caught.value.image.split(":")[0])


def test_config_vars_reach_collectstatic(slug_client, slug_builds, django_build):
    """Settings read config vars (from ENV_DIR) when collectstatic runs."""
    _, _, cache = django_build
    source = slug_builds.source("django")
    settings = source / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace(
        'STATIC_ROOT = BASE_DIR / "staticfiles"', 'STATIC_ROOT = BASE_DIR / os.environ["ASSETS"]'))
    (source / "Procfile").write_text("web: ASSETS=collected gunicorn mysite.wsgi -b 0.0.0.0:$PORT\n")
    result, _, _ = slug_builds.build(source=source, cache=cache, env={"ASSETS": "collected"})
    code, out = run_once(slug_client, result.image, "cat /app/collected/site.css")
    assert code == 0, out
    assert "collected by collectstatic" in out


def test_a_python_app_without_procfile_is_refused(slug_client, slug_builds):
    with pytest.raises(BuildError, match="Procfile with a web process") as caught:
        slug_builds.build(files={"requirements.txt": "\n", "app.py": "print('hi')\n"})
    assert "-----> Python app detected" in caught.value.lines
    assert not any("Installing" in line for line in caught.value.lines)  # refused before compiling


def test_a_failing_compile_fails_with_the_reason_and_no_image(slug_client, slug_builds):
    with pytest.raises(BuildError) as caught:
        slug_builds.build(files={"requirements.txt": "deis-no-such-package-4f3c2a==1.0\n",
                                 "Procfile": "web: python3 -m http.server $PORT\n"})
    message = str(caught.value)
    assert "the Python buildpack failed (bin/compile exited 1)" in message
    assert "deis-no-such-package-4f3c2a" in message  # pip's last line, the reason
    assert not slug_client.images.list(name=caught.value.image.split(":")[0])
    assert build_container_gone(slug_client, caught.value.app)


# ---- Node.js -----------------------------------------------------------------------------------

def test_express_app_builds_and_serves_with_npm_start(slug_client, slug_builds, slug_timings):
    result, lines, seconds = slug_builds.build("express")
    slug_timings["express"] = seconds
    assert result.buildpack == "Node.js"
    assert result.procfile == {"web": "npm start"}
    assert "-----> Node.js app detected" in lines
    assert " !     WARNING: package.json asks for Node.js >=22 (engines.node), which this stack" in lines
    assert any(line.startswith(" !     does not have: building and running with Node.js 18.")
               for line in lines)
    assert "-----> Installing dependencies with npm ci (package-lock.json)" in lines
    assert "-----> Running npm run build" in lines
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert get(url + "/").text == "hello from express on port 5000\n"
        assert get(url + "/built").text == "built by npm run build\n"


# ---- static, Procfile-only, third-party and several buildpacks ----------------------------------

def test_static_site_is_served_but_never_its_dotfiles(slug_client, slug_builds, slug_timings):
    result, lines, seconds = slug_builds.build("static")
    slug_timings["static"] = seconds
    assert result.buildpack == "Static"
    assert "-----> Static app detected" in lines
    assert list(result.procfile) == ["web"]
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        index = get(url + "/")
        assert index.status_code == 200 and "hello from a static site" in index.text
        assert get(url + "/css/site.css").text == "body { color: teal; }\n"
        for path in ("/.env", "/%2Eenv", "/css/../.env", "/.deis/static-server.py", "/.profile.d/",
                     "/css/", "/missing.html"):
            answer = get(url + path)
            assert answer.status_code == 404, path
            assert "do-not-serve" not in answer.text


def test_procfile_only_app(slug_client, slug_builds, slug_timings):
    result, lines, seconds = slug_builds.build("procfile")
    slug_timings["procfile"] = seconds
    assert result.buildpack == "Null"
    assert set(result.procfile) == {"web", "worker", "release"}
    assert "-----> Null app detected" in lines
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert get(url + "/hello.txt").text == "hello from a Procfile-only app\n"
    code, out = run_once(slug_client, result.image, result.procfile["release"], {"DEIS_APP": "demo"})
    assert (code, out.strip()) == (0, "release phase ran for demo")
    container = slug_client.containers.run(result.image, command=[result.procfile["worker"]],
                                           environment={"DEIS_APP": "demo"}, detach=True)
    try:
        time.sleep(2.5)
        assert "worker demo tick" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_buildpack_url_local_path_skips_detection(slug_client, slug_builds):
    result, lines, _ = slug_builds.build("static", env={"BUILDPACK_URL": str(THIRD_PARTY)})
    assert result.buildpack == "Third-party null"
    assert "-----> Third-party null app detected" in lines
    assert "-----> third-party null buildpack: nothing to compile in /app" in lines
    assert not any("Static" in line for line in lines)
    assert result.procfile == {"web": 'python3 -m http.server "$PORT"'}
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert "hello from a static site" in get(url + "/index.html").text


def _buildpack(root: Path, name: str, compile_script: str, release: str | None = None) -> Path:
    """A tiny buildpack at root/name (detect names it; compile runs `compile_script`)."""
    bp = root / name
    (bp / "bin").mkdir(parents=True)
    scripts = {"detect": f"#!/bin/bash\necho {name}\n",
               "compile": "#!/bin/bash\nset -e\nBP_DIR=$(cd $(dirname $0)/.. && pwd)\n" + compile_script,
               "release": "#!/bin/bash\ncat <<'YAML'\n" + (release or "--- {}\n") + "YAML\n"}
    for script, text in scripts.items():
        (bp / "bin" / script).write_text(text)
        (bp / "bin" / script).chmod(0o755)
    return bp


def test_buildpacks_file_runs_each_in_order_and_sources_exports(slug_client, slug_builds, tmp_path):
    first = _buildpack(tmp_path, "first", 'echo "export GREETING=\\"$(cat $3/GREETING) + export\\"" '
                                          '> $BP_DIR/export\necho "-----> first ran"\n')
    second = _buildpack(tmp_path, "second", 'echo "$GREETING" > $1/greeting.txt\n'
                                            'echo "-----> second saw: $GREETING"\n',
                        "default_process_types:\n  web: echo not the last\n")
    files = {".buildpacks": f"# comment\n{first}\n\n{second}\nstatic\n",
             "index.html": "<h1>several buildpacks</h1>\n"}
    result, lines, _ = slug_builds.build(files=files, env={"GREETING": "hello from config"})
    assert result.buildpack == "first, second, Static"
    headers = [line for line in lines if line.endswith("app detected")]
    assert headers == ["-----> first app detected", "-----> second app detected",
                       "-----> Static app detected"]
    assert "-----> second saw: hello from config + export" in lines
    assert lines.index("-----> first ran") < lines.index("-----> second saw: hello from config + export")
    assert result.procfile == {"web": "python3 /app/.deis/static-server.py"}  # the last release
    with serving(slug_client, result.image, result.procfile["web"]) as url:
        assert get(url + "/greeting.txt").text == "hello from config + export\n"


@contextlib.contextmanager
def git_over_http(slug_client, root: Path):
    """`root` served over plain HTTP (git's dumb protocol) where build containers can reach it."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import ipaddress

    # With configured address pools the engine records only the subnet: the gateway is its first host.
    ipam = slug_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = ipam.get("Gateway") or str(ipaddress.ip_network(ipam["Subnet"])[1])
    try:
        yield f"http://{gateway}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_buildpack_url_git_with_a_ref(slug_client, slug_builds, tmp_path):
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def git(*args, cwd=tmp_path / "work"):
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    shutil.copytree(THIRD_PARTY, tmp_path / "work")
    compile_script = tmp_path / "work" / "bin" / "compile"
    compile_script.write_text('#!/bin/bash\necho "-----> compiled by the v1 tag"\n')
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "v1")
    git("tag", "v1")
    compile_script.write_text('#!/bin/bash\necho "-----> compiled by main"\n')
    git("commit", "-q", "-am", "later")
    git("clone", "-q", "--bare", str(tmp_path / "work"), str(tmp_path / "served" / "bp.git"),
        cwd=tmp_path)
    git("update-server-info", cwd=tmp_path / "served" / "bp.git")
    with git_over_http(slug_client, tmp_path / "served") as base:
        result, lines, _ = slug_builds.build("procfile", env={"BUILDPACK_URL": f"{base}/bp.git#v1"})
        assert f"-----> Fetching buildpack {base}/bp.git#v1" in lines
        assert "-----> compiled by the v1 tag" in lines
        assert result.buildpack == "Third-party null"
        _, lines, _ = slug_builds.build("procfile", env={"BUILDPACK_URL": f"{base}/bp.git"})
        assert "-----> compiled by main" in lines


def test_no_buildpack_applies(slug_builds):
    with pytest.raises(BuildError, match="no buildpack applies") as caught:
        slug_builds.build(files={"README": "nothing to build\n"})
    assert "BUILDPACK_URL" in str(caught.value)


def test_an_unreachable_buildpack_url_fails_the_build(slug_builds):
    with pytest.raises(BuildError, match="could not fetch the buildpack"):
        slug_builds.build("procfile", env={"BUILDPACK_URL": "https://git.invalid/buildpack.git#v1"})


def test_a_bad_procfile_fails_before_any_container(tmp_path):
    class NoDocker:
        def __getattr__(self, name):
            raise AssertionError("a container was asked for")

    (tmp_path / "Procfile").write_text("web: ok\n<<<<<<< HEAD\n")
    with pytest.raises(ProcfileError, match="line 2"):
        build_slug(tmp_path, "bad", "deis-test-apps/bad:v1", {}, tmp_path / "cache",
                   lambda line: None, client=NoDocker())
    assert not (tmp_path / "cache").exists()


# ---- limits -------------------------------------------------------------------------------------

def test_a_build_over_its_time_limit_is_killed(slug_client, slug_builds, tmp_path):
    bp = _buildpack(tmp_path, "sleepy", 'echo "-----> sleeping"\nsleep 120\n')
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"build exceeded its time limit of 3 s") as caught:
        slug_builds.build("procfile", env={"BUILDPACK_URL": str(bp)},
                          limits=BuildLimits(memory="256m", cpus=1, timeout=3))
    assert time.monotonic() - started < 30
    assert "-----> sleeping" in caught.value.lines
    assert build_container_gone(slug_client, caught.value.app)
    assert not slug_client.images.list(name=caught.value.image.split(":")[0])


def test_a_build_over_its_memory_limit_fails_saying_so(slug_client, slug_builds, tmp_path):
    bp = _buildpack(tmp_path, "hungry", "python3 -c \"x = b'x' * (512 << 20); print(len(x))\"\n")
    with pytest.raises(BuildError, match="build exceeded its memory limit of 64m") as caught:
        slug_builds.build("procfile", env={"BUILDPACK_URL": str(bp)},
                          limits=BuildLimits(memory="64m", cpus=1, timeout=120))
    assert not slug_client.images.list(name=caught.value.image.split(":")[0])


# ---- host-side pieces: .slugignore, the buildpack plan, the build environment -------------------

def test_slugignore(tmp_path):
    for name in ["keep.txt", "notes.log", "sub/deep/trace.log", "docs/a.md", "sub/docs/b.md",
                 "tmp/x", "data/tmp", "spec/a_test.py", "spec/unit/b_test.py", "root.bin",
                 "sub/root.bin", "cache/one/two/file", ".git/objects/x.log"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".slugignore").write_text(
        "# comments and blank lines are ignored\n\n*.log\n/docs\ntmp/\nspec/**/*_test.py\n"
        "/root.bin\ncache/**\n")
    removed = apply_slugignore(tmp_path)
    assert removed == sorted(["notes.log", "sub/deep/trace.log", "docs", "tmp", "spec/a_test.py",
                              "spec/unit/b_test.py", "root.bin", "cache/one"])
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted([".git/objects/x.log", ".slugignore", "data/tmp", "keep.txt",
                           "sub/docs/b.md", "sub/root.bin"])


def test_slugignore_absent_removes_nothing(tmp_path):
    (tmp_path / "a.log").write_text("x")
    assert apply_slugignore(tmp_path) == []
    assert (tmp_path / "a.log").exists()


def test_buildpack_plan(tmp_path):
    assert buildpack_plan(tmp_path, {}) == []
    assert buildpack_plan(tmp_path, {"BUILDPACK_URL": "https://github.com/x/bp.git#v2"}) == [
        ("git", "https://github.com/x/bp.git#v2")]
    assert buildpack_plan(tmp_path, {"BUILDPACK_URL": str(THIRD_PARTY)}) == [
        ("local", str(THIRD_PARTY))]
    (tmp_path / ".buildpacks").write_text("heroku/nodejs\n# x\npython\ngit://github.com/x/y.git#main\n")
    assert buildpack_plan(tmp_path, {}) == [("builtin", "nodejs"), ("builtin", "python"),
                                            ("git", "git://github.com/x/y.git#main")]
    # Only http(s):// and git:// URLs, refs that can never be read as an option by git.
    (tmp_path / ".buildpacks").write_text("git@github.com:x/y.git\n")
    with pytest.raises(BuildError, match=r"\.buildpacks: invalid buildpack"):
        buildpack_plan(tmp_path, {})
    assert buildpack_plan(tmp_path, {"BUILDPACK_URL": "static"}) == [("builtin", "static")]
    for bad in ("ruby", str(tmp_path / "nope"), "-uhttps://x", "https://x/bp.git#--upload-pack=touch /tmp/x",
                "https://x/bp.git#-b", "ssh://x/bp.git", "ext::sh -c touch% /tmp/x", "https://x/b p.git",
                "https://-oProxyCommand=x/bp", f"file://{THIRD_PARTY}#--orphan=x", "https://x/bp.git#a..b"):
        with pytest.raises(BuildError):
            buildpack_plan(tmp_path, {"BUILDPACK_URL": bad})
    # Any collaborator can set config: local buildpacks come only from the allowed folders.
    with pytest.raises(BuildError, match="DEIS_LOCAL_BUILDPACK_DIRS"):
        buildpack_plan(tmp_path, {"BUILDPACK_URL": "/usr/lib/git-core"})
    assert buildpack_plan(tmp_path, {"BUILDPACK_URL": f"file://{THIRD_PARTY}#v1"}) == [
        ("localgit", f"{THIRD_PARTY}#v1")]


def test_buildpack_url_of_a_local_git_repository_at_a_ref(slug_builds, tmp_path):
    import subprocess

    repo = tmp_path / "bp"
    shutil.copytree(THIRD_PARTY, repo)
    git = {"cwd": repo, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", "main"], **git)
    subprocess.run(["git", "add", "."], **git)
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", *ident, "commit", "-q", "-m", "v1"], **git)
    subprocess.run(["git", "tag", "v1"], **git)
    (repo / "bin" / "compile").write_text('#!/bin/bash\necho "-----> compiled by the newer commit"\n')
    subprocess.run(["git", *ident, "commit", "-q", "-am", "v2"], **git)
    (repo / "bin" / "compile").write_text('#!/bin/bash\necho "-----> an uncommitted change"\n')

    _, lines, _ = slug_builds.build("procfile", env={"BUILDPACK_URL": f"file://{repo}#v1"})
    assert "-----> third-party null buildpack: nothing to compile in /app" in lines
    _, lines, _ = slug_builds.build("procfile", env={"BUILDPACK_URL": str(repo)})
    assert "-----> compiled by the newer commit" in lines  # HEAD as committed, not the working tree
    assert not any("uncommitted" in line for line in lines)


def test_build_environment_passes_ca_bundle_and_http_indexes_only():
    text = build_environment("demo", {
        "PIP_INDEX_URL": "https://pypi.example/simple",
        "PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple https://extra.example/simple",
        "PIP_FIND_LINKS": "/opt/wheels", "NPM_CONFIG_REGISTRY": "https://npm.example/"})
    assert "export PIP_INDEX_URL=https://pypi.example/simple\n" in text
    assert "export PIP_EXTRA_INDEX_URL=https://extra.example/simple\n" in text
    assert "export NPM_CONFIG_REGISTRY=https://npm.example/\n" in text
    assert "file://" not in text and "PIP_FIND_LINKS" not in text
    assert "export DEIS_APP=demo\n" in text
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        for name in ("PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                     "npm_config_cafile"):
            assert f"export {name}=/etc/ssl/certs/ca-certificates.crt\n" in text


@pytest.mark.parametrize("layout", ["pyproject", "setup.py", "Pipfile"])
def test_python_projects_without_requirements_txt_are_detected_and_installed(slug_client, slug_builds, layout):
    """The other ways the contract names to declare a Python app: the project itself (pyproject.toml
    or setup.py, installed with `pip install .`) or a Pipfile; each installs its dependency."""
    package = {"greeter/__init__.py": "import six\nGREETING = 'hello from ' + six.__name__\n"}
    files = {
        "pyproject": {"pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
                                        'build-backend = "setuptools.build_meta"\n[project]\nname = "greeter"\n'
                                        'version = "1.0"\ndependencies = ["six==1.16.0"]\n', **package},
        "setup.py": {"setup.py": "from setuptools import setup\nsetup(name='greeter', version='1.0', "
                                 "packages=['greeter'], install_requires=['six==1.16.0'])\n", **package},
        "Pipfile": {"Pipfile": '[packages]\nsix = "==1.16.0"\n', **package},
    }[layout]
    files["Procfile"] = "web: python -c 'import greeter; print(greeter.GREETING)'\n"
    result, lines, _ = slug_builds.build(files=files)
    assert "-----> Python app detected" in lines, lines
    assert result.buildpack == "Python"
    code, output = run_once(slug_client, result.image, result.procfile["web"])
    assert (code, output.strip()) == (0, "hello from six"), output
