"""The builder's SSH server: `git push`/`git clone` of apps, nothing else.

Keys are checked by their MD5 fingerprint through the controller (`GET /v1/hooks/key/<fp>`), access
to the app through `POST /v1/hooks/config`; then git's own receive-pack/upload-pack runs on the app's
bare repository with the SSH channel as its stdin/stdout/stderr. Building and deploying happen before
git accepts the push: the repository's pre-receive hook (deis/builder/prereceive.py) asks this
server over a unix socket, which builds in a thread of its own (deis/builder/hook.py). So a push
starts no new Python with the builder's imports, and the build container is started while the pack
is still being received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
from pathlib import Path

import asyncssh

from deis.builder import BuildError, ServerSettings, build_labels, hook
from deis.builder.controller import HookError, Hooks
from deis.builder.repos import (
    APP_NAME,
    builder_dir,
    cache_path,
    ensure_repo,
    has_commits,
    remove_app,
    repo_path,
    scratch_dir,
    try_lock,
)

log = logging.getLogger("deis.builder")

DEFAULT_PORT = 2222
HOST_KEY = "ssh_host_ed25519_key"
# git-receive-pack 'app.git', git-upload-pack '/app.git', git receive-pack app.git, ...
COMMAND = re.compile(r"^git[- ](receive-pack|upload-pack) +('?)/?([^'/\s]+?)(?:\.git)?/?\2$")
GIT_PROTOCOL = re.compile(r"^[A-Za-z0-9=:.,-]{1,64}$")
CHUNK = 65536


def host_key(data_dir: Path) -> asyncssh.SSHKey:
    """The server's host key, generated once into `<data_dir>/builder/` so clients can pin it."""
    path = builder_dir(data_dir) / HOST_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        tmp = path.with_suffix(".tmp")
        key.write_private_key(str(tmp))
        tmp.chmod(0o600)
        key.write_public_key(str(path) + ".pub")
        tmp.rename(path)
    return asyncssh.read_private_key(str(path))


class _Connection(asyncssh.SSHServer):
    """One client: who it is (from its key) once authenticated."""

    def __init__(self, hooks: Hooks):
        self.hooks, self.conn = hooks, None
        self.user = self.fingerprint = None

    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate; the SSH user name ("git") does not matter

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint("md5").removeprefix("MD5:")
        try:
            owner = await asyncio.to_thread(self.hooks.key_owner, fingerprint)
        except HookError as exc:
            log.warning("key lookup failed: %s", exc)
            self.conn.send_auth_banner(f"The Deis builder cannot check keys right now: {exc}\n")
            return False
        if owner is None:
            return False
        self.user, self.fingerprint = owner["username"], fingerprint
        return True


class BuilderServer:
    """Accepts git over SSH for the apps of one controller."""

    def __init__(self, data_dir: Path, hooks: Hooks, host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                 settings: ServerSettings | None = None):
        self.data_dir, self.hooks, self.host, self.port = Path(data_dir), hooks, host, port
        self.settings = settings or ServerSettings()
        self._server = self._lock = None
        self._hooks_server: _HookRequests | None = None
        self._sessions: dict[str, hook.PushSession] = {}
        self._open: dict[str, int] = {}  # user -> git sessions open (only the event loop's thread)

    async def start(self) -> None:
        await asyncio.to_thread(self._take_over)
        self._hooks_server = _HookRequests(self)
        threading.Thread(target=self._hooks_server.serve_forever, name="deis-builder-hooks",
                         daemon=True).start()
        self._server = await asyncssh.create_server(
            lambda: _Connection(Hooks(self.hooks.url, self.hooks.key)),
            self.host, self.port, server_host_keys=[host_key(self.data_dir)],
            process_factory=self._session, encoding=None, allow_scp=False,
            agent_forwarding=False, x11_forwarding=False, login_timeout=60)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("builder listening on %s:%s", self.host, self.port)

    async def serve_forever(self) -> None:
        await self.start()
        await self._server.wait_closed()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.close_hooks()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def close_hooks(self) -> None:
        """Stop taking hooks' requests (also once the event loop is gone)."""
        if self._hooks_server is not None:
            self._hooks_server.shutdown()
            self._hooks_server.server_close()
            self._hooks_server = None

    def _take_over(self) -> None:
        """Become the one server of this data directory, then remove what the one before left
        (none of its builds survive it, even when it was killed): its build containers, whatever
        their state, its scratch folders and the pushed objects git kept in quarantine."""
        self._lock = try_lock(builder_dir(self.data_dir) / "server.lock")
        if self._lock is None:
            raise BuildError(f"another builder is serving {self.data_dir}")
        self._remove_leftover_containers()
        scratch = scratch_dir(self.data_dir)
        for folder in [scratch, *builder_dir(self.data_dir).glob("repos/*.git/objects/tmp_objdir-incoming-*")]:
            shutil.rmtree(folder, ignore_errors=True)
        scratch.mkdir(mode=0o700)

    def _remove_leftover_containers(self) -> None:
        try:
            import docker
            with contextlib.closing(docker.from_env()) as client:
                labels = [f"{k}={v}" for k, v in build_labels(self.data_dir).items()]
                for container in client.containers.list(all=True, filters={"label": labels}):
                    container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - no engine yet: builds will say so
            log.warning("could not look for leftover build containers: %s", exc)

    async def _session(self, process: asyncssh.SSHServerProcess) -> None:
        user = process.get_extra_info("connection").get_owner().user or ""
        limit = self.settings.sessions_per_user
        try:
            if limit > 0 and self._open.get(user, 0) >= limit:
                log.warning("%s has %d git sessions open: one more refused", user, self._open[user])
                status = _fail(process, f"{user} already has {self._open[user]} git sessions open, the most "
                                        f"the Deis builder allows (DEIS_BUILDER_SESSIONS_PER_USER={limit}). "
                                        "Wait for one to end, then try again.")
            else:
                self._open[user] = self._open.get(user, 0) + 1
                try:
                    status = await self._handle(process)
                finally:
                    self._open[user] -= 1
                    if not self._open[user]:
                        del self._open[user]
        except Exception as exc:  # keep the server up and tell the client something useful
            log.exception("session failed")
            status = _fail(process, f"The Deis builder failed: {type(exc).__name__}: {exc}")
        try:
            process.exit(status)
        except (OSError, asyncssh.Error):
            pass

    async def _handle(self, process: asyncssh.SSHServerProcess) -> int:
        client: _Connection = process.get_extra_info("connection").get_owner()
        command = process.command
        if not command:
            return _fail(process, f"Hi {client.user}! This is the Deis builder: it accepts git only. "
                                  "Deploy with `git push deis master`.")
        match = COMMAND.match(command.strip())
        if not match:
            return _fail(process, f"The Deis builder runs only git push and git clone/fetch; "
                                  f"`{command[:100]}` is not allowed.")
        verb, app = match.group(1), match.group(3)
        if app.startswith("-"):  # never an option to git (its path argument is absolute anyway)
            return _fail(process, f"'{app[:100]}' is not an app name: app names start with a letter.")
        if not APP_NAME.match(app) or len(app) > 63:
            return _fail(process, f"No app named '{app}'.")
        try:
            await asyncio.to_thread(client.hooks.config, client.user, app)
        except HookError as exc:
            return _fail(process, str(exc))
        env = self._env(process)
        if verb == "upload-pack":
            path = repo_path(self.data_dir, app)
            if not await asyncio.to_thread(has_commits, path):
                return _fail(process, f"{app} has nothing to clone yet: deploy it first with "
                                      "`git push deis master`.")
            return await bridge(process, ["git", verb, str(path)], env)
        path = await asyncio.to_thread(ensure_repo, self.data_dir, app)
        conn = process.get_extra_info("connection")
        peer, local = conn.get_extra_info("peername") or ("", 0), conn.get_extra_info("sockname") or ("", 0)
        session = hook.PushSession(app=app, user=client.user, fingerprint=client.fingerprint, repo=path,
                                   ssh_connection=f"{peer[0]} {peer[1]} {local[0]} {local[1]}",
                                   command=command)
        token = secrets.token_hex(16)
        self._sessions[token] = session
        status = 1
        try:
            session.standby = await asyncio.to_thread(self._standby, app, path)
            env.update(DEIS_BUILDER_SOCKET=self._hooks_server.path, DEIS_PUSH_SESSION=token)
            status = await bridge(process, ["git", verb, str(path)], env)
            return status
        finally:
            self._sessions.pop(token, None)
            await asyncio.to_thread(session.close)
            if status != 0:
                await asyncio.to_thread(self._forget_if_destroyed, client.hooks, client.user, app)

    def _forget_if_destroyed(self, hooks: Hooks, user: str, app: str) -> None:
        """A push that failed because its app was destroyed meanwhile (`deis destroy` removed the
        repository and cache while it ran): remove what it made again."""
        try:
            hooks.config(user, app)
        except HookError as exc:
            if exc.status == 404 and "No app named" in str(exc):
                log.info("%s was destroyed during a push: its repository and cache go", app)
                remove_app(self.data_dir, app)

    def _standby(self, app: str, repo: Path):
        """Start a build container for the push, unless the app's current code has a Dockerfile
        (then the push most likely builds with `docker build`)."""
        has_dockerfile = subprocess.run(["git", "cat-file", "-e", "HEAD:Dockerfile"], cwd=repo,
                                        capture_output=True, check=False).returncode == 0
        if has_dockerfile:
            return None
        from deis.builder.slug import Standby
        return Standby(app, cache_path(self.data_dir, app), labels=build_labels(self.data_dir))

    def pre_receive(self, request: dict, say) -> int:
        """A pre-receive hook's request (see prereceive.py): build and deploy, or refuse."""
        session = self._sessions.get(str(request.get("session")))
        if session is None:
            return hook.refuse(say, "This push is not one the builder knows; push again.")
        try:
            git_env = hook.git_environment(session, request.get("git_env") or {}, str(request.get("cwd")))
        except hook.BuildError as exc:
            return hook.refuse(say, str(exc))
        updates = [[str(word) for word in update] for update in request.get("updates") or []]
        return hook.run(session, updates, git_env, say, self.data_dir, Hooks(self.hooks.url, self.hooks.key))

    def _env(self, process) -> dict:
        """git's environment: the server's, without git's variables and the builder's key."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "DEIS_BUILDER_KEY"}
        protocol = (process.env or {}).get("GIT_PROTOCOL")
        if isinstance(protocol, bytes):
            protocol = protocol.decode(errors="replace")
        if protocol and GIT_PROTOCOL.match(protocol):
            env["GIT_PROTOCOL"] = protocol  # lets clients use git's wire protocol v2
        return env


class _HookRequests(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The pre-receive hooks' requests, a thread each, on an abstract unix socket: no file, so none is
    left when the builder is killed, and no limit from the data directory's path."""

    daemon_threads = True

    def __init__(self, builder: BuilderServer):
        self.builder = builder
        name = f"deis-builder-{secrets.token_hex(8)}"
        self.path = "@" + name  # how the hook is told (prereceive.py): the environment holds no NUL
        super().__init__("\0" + name, _HookRequest)

    def verify_request(self, request, client_address) -> bool:
        """The hooks of this builder's git run as its user: nobody else's processes may ask."""
        _, uid, _ = struct.unpack("3i", request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                           struct.calcsize("3i")))
        return uid == os.getuid()


class _HookRequest(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        connected = True

        def send(data: bytes) -> None:
            nonlocal connected
            if connected:  # a hook that is gone does not stop the build: it deploys all the same
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    connected = False

        try:
            request = json.loads(self.rfile.readline() or b"{}")
        except ValueError:
            request = {}
        status = self.server.builder.pre_receive(
            request if isinstance(request, dict) else {},
            lambda line: send(b"|" + line.encode(errors="replace") + b"\n"))
        send(f"={status}\n".encode())


def _fail(process, message: str) -> int:
    try:
        process.stderr.write((message.rstrip() + "\n").encode())
    except (OSError, asyncssh.Error):
        pass
    return 1


async def bridge(process: asyncssh.SSHServerProcess, argv: list[str], env: dict) -> int:
    """Run `argv` with the channel as its stdin/stdout/stderr; its exit status. If the client goes
    away, git finishes on its own (a push already building still deploys) and its output is dropped."""
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)

    async def feed():
        try:
            while data := await process.stdin.read(CHUNK):
                proc.stdin.write(data)
                await proc.stdin.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            proc.stdin.close()

    async def pump(source, target):
        connected = True
        while data := await source.read(CHUNK):
            if connected:
                try:
                    target.write(data)
                    await target.drain()
                except (OSError, asyncssh.Error):
                    connected = False

    feeder = asyncio.create_task(feed())
    await asyncio.gather(pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr))
    status = await proc.wait()
    feeder.cancel()
    return status


def run_in_thread(server: BuilderServer) -> callable:
    """Start `server` on an event loop of its own in a daemon thread; returns a function that stops it."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def main():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="deis-builder-ssh", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise failure[0]

    def stop():
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return stop
