"""What an attacker with an ordinary account found (issue 11), with real ssh, git and Docker: idle
push sessions cost no CPU, a user's sessions are limited, repositories and caches are private, and
`deis destroy` leaves nothing of the app behind (repository, build cache, log)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

from deis.builder import ServerSettings, build_labels
from deis.builder.controller import Hooks
from deis.builder.server import BuilderServer, run_in_thread
from tests.builder.conftest import builder_wait_for, git_make_repo

SERVER = "git@127.0.0.1"
APPS = Path(__file__).parent / "apps"


def idle_session(user, app: str) -> subprocess.Popen:
    """`git-receive-pack` over ssh that never sends a pack: what a `git push` waiting forever looks like."""
    proc = subprocess.Popen([*user.ssh_command(), SERVER, f"git-receive-pack '{app}.git'"], env=user.env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()  # the ref advertisement: the session is up
    assert first, proc.stderr.read().decode(errors="replace") if proc.poll() is not None else "no answer"
    return proc


def end(proc: subprocess.Popen) -> None:
    with_stdin = proc.stdin
    if with_stdin and not with_stdin.closed:
        with_stdin.close()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def cpu_ns(container) -> int:
    return int(container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"])


def test_an_idle_push_session_costs_no_cpu(builder_platform, builder_owner, builder_docker):
    app = builder_platform.app(builder_owner)
    labels = [f"{k}={v}" for k, v in build_labels(builder_platform.data_dir).items()]
    session = idle_session(builder_owner, app)
    try:
        def standby():
            found = [c for c in builder_docker.containers.list(filters={"label": labels})
                     if c.name.startswith(f"deis-build-{app}-")]
            return found[0] if found else None

        container = builder_wait_for(standby, timeout=90)
        time.sleep(1)  # past its start
        started, before = time.monotonic(), cpu_ns(container)
        time.sleep(3)
        used, elapsed = cpu_ns(container) - before, time.monotonic() - started
        # The old poll (`sleep 0.01` in a loop) used ~10% of a CPU: 0.3 s of CPU in 3 s.
        assert used / 1e9 < 0.01 * elapsed, f"the idle build container used {used / 1e6:.1f} ms of CPU in {elapsed:.1f} s"
    finally:
        end(session)
    builder_wait_for(lambda: standby() is None, timeout=30)  # the session's end removes it


def test_a_user_has_at_most_n_sessions_at_once(builder_platform, builder_owner, tmp_path):
    live = builder_platform.live
    server = BuilderServer(tmp_path / "data", Hooks(live.url, live.builder_key), host="127.0.0.1", port=0,
                           settings=ServerSettings(sessions_per_user=2))
    stop = run_in_thread(server)
    owner = builder_owner
    owner.ssh_port = server.port
    other = builder_platform.user("other")
    other.ssh_port = server.port
    app = builder_platform.app(owner)
    sessions = []
    try:
        sessions = [idle_session(owner, app) for _ in range(2)]
        repo = git_make_repo(tmp_path / "work", {"index.html": "x\n"}, owner, app)
        started = time.monotonic()
        pushed = owner.git("push", "deis", "master", cwd=repo, timeout=60)
        assert pushed.returncode != 0
        assert time.monotonic() - started < 10
        assert f"{owner.name} already has 2 git sessions open" in pushed.stderr, pushed.stderr
        assert "DEIS_BUILDER_SESSIONS_PER_USER=2" in pushed.stderr
        # Another user is not limited by them; the owner again once a session ended.
        sessions.append(idle_session(other, builder_platform.app(other)))
        end(sessions.pop(0))
        time.sleep(0.5)  # the server sees the session end
        sessions.append(idle_session(owner, app))
    finally:
        for session in sessions:
            end(session)
        stop()
        owner.ssh_port = builder_platform.ssh_port


def _readable_by_others(root: Path) -> list[str]:
    found = []
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(top) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            if mode & 0o007 or (stat.S_ISDIR(mode) and mode & 0o077):
                found.append(f"{oct(mode & 0o777)} {path.relative_to(root)}")
    return found


def test_repositories_and_build_caches_are_private(builder_platform, builder_owner, tmp_path):
    app = builder_platform.app(builder_owner)
    files = {str(p.relative_to(APPS / "procfile")): p.read_text() for p in (APPS / "procfile").rglob("*")
             if p.is_file()}
    repo = git_make_repo(tmp_path / app, files, builder_owner, app)
    pushed = builder_owner.git("push", "deis", "master", cwd=repo)
    assert pushed.returncode == 0, pushed.stderr
    builder = builder_platform.data_dir / "builder"
    for folder in (builder / "repos", builder / "repos" / f"{app}.git", builder / "cache",
                   builder / "cache" / app):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert _readable_by_others(builder / "repos" / f"{app}.git") == []
    # The build container makes the cache's files private once it has saved them (after the release).
    builder_wait_for(lambda: not _readable_by_others(builder / "cache" / app), timeout=30)


def test_destroy_removes_repository_cache_and_log_for_good(builder_platform, builder_owner, tmp_path):
    """Late output of the destroyed app's processes (the worker ticks while it is stopped) never
    re-creates its log: a new app of the same name starts with an empty one."""
    from deis.logger import LogStore
    from deis.logger.collector import Collector

    store = LogStore(builder_platform.data_dir / "logs" / "apps")
    collector = Collector(store, namespace=builder_platform.namespace, positions=tmp_path / "positions.json")
    threading.Thread(target=collector.run, daemon=True).start()
    owner = builder_owner
    try:
        app = builder_platform.app(owner)
        files = {str(p.relative_to(APPS / "procfile")): p.read_text() for p in (APPS / "procfile").rglob("*")
                 if p.is_file()}
        repo = git_make_repo(tmp_path / app, files, owner, app)
        assert owner.git("push", "deis", "master", cwd=repo).returncode == 0
        assert owner.api.post(f"/v1/apps/{app}/scale", json={"web": 1, "worker": 1}).status_code < 300
        builder_wait_for(lambda: any("worker" in line and "tick" in line for line in store.tail(app, 50)),
                         timeout=60)
        builder = builder_platform.data_dir / "builder"
        assert (builder / "repos" / f"{app}.git").exists() and (builder / "cache" / app).exists()

        assert owner.api.delete(f"/v1/apps/{app}").status_code == 204
        assert not (builder / "repos" / f"{app}.git").exists()
        assert not (builder / "cache" / app).exists()
        assert not store.path(app).exists()
        # The deployer stops the processes (a grace of 2 s: the worker keeps ticking meanwhile).
        import docker

        client = docker.from_env()
        try:
            builder_wait_for(lambda: not client.containers.list(  # ignore_removed: one listed, gone by its inspect
                all=True, filters={"label": f"{builder_platform.namespace}.app={app}"}, ignore_removed=True),
                timeout=60)
        finally:
            client.close()
        time.sleep(2)  # what the collector still had in hand
        assert not store.path(app).exists(), store.tail(app, 20)

        again = owner.api.post("/v1/apps", json={"id": app})
        assert again.status_code == 201, again.text
        assert not any("tick" in line for line in store.tail(app, 100))
        assert not (builder / "repos" / f"{app}.git" / "refs" / "heads" / "master").exists()
    finally:
        collector.stop_event.set()
        shutil.rmtree(tmp_path, ignore_errors=True)
