"""The pre-receive hook of every app repository: build and deploy the pushed commit before git
accepts it, so a push that fails to build or deploy leaves the branch where it was.

git runs it with "old new ref" lines on stdin; what it prints reaches the pusher as `remote:` lines,
and a non-zero exit rejects the push. The server passes DEIS_APP, DEIS_USER, DEIS_FINGERPRINT,
DEIS_DATA_DIR, DEIS_CONTROLLER_URL, DEIS_BUILDER_KEY and SSH_CONNECTION / SSH_ORIGINAL_COMMAND.

Pushes to one app queue on the app's lock. The lock is held until git has moved the branch to the
built commit (a child process keeps it for the moment between this hook's exit and git's ref
update), and a push whose branch moved while it waited is refused: the deployed release and the
branch never disagree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from deis.builder import BuildError
from deis.builder.repos import ZERO, acquire_app_lock

BRANCHES = ("refs/heads/master", "refs/heads/main")
QUARANTINE = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


def say(line: str) -> None:
    print(line, flush=True)


def refuse(message: str) -> int:
    """Print the reason the Heroku way (`!     ` first) and reject the push."""
    for number, line in enumerate(message.splitlines() or ["The push was refused."]):
        say(("!     " if number == 0 else "       ") + line)
    return 1


def _outside_quarantine() -> dict:
    """The environment without the quarantine of the pushed objects (for ref reads and writes)."""
    return {k: v for k, v in os.environ.items() if k not in QUARANTINE}


def ref_value(ref: str, env: dict | None = None) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], capture_output=True, text=True,
                          env=env)
    return done.stdout.strip() or None


def check_updates(app: str, updates: list[list[str]]) -> str | None:
    """Why these ref updates cannot be accepted, or None."""
    for update in updates:
        if len(update) != 3:
            return f"Unexpected input from git: {' '.join(update)}"
        _, new, ref = update
        if ref not in BRANCHES:
            return (f"{app} is deployed from master: push with `git push deis master` "
                    f"({ref} was refused).")
        if new == ZERO:
            return (f"Deleting {ref.rsplit('/', 1)[-1]} of {app} is not allowed: it is what runs. "
                    "Push a commit instead: `git push deis master`.")
    if len(updates) != 1:
        return "Push one branch at a time: `git push deis master`."
    return None


def hold_lock_until(lock, ref: str, sha: str, receive_pack: int, limit: float = 120) -> None:
    """Keep `lock` in a child process until git has moved `ref` to `sha` (or given up)."""
    if os.fork() != 0:
        return
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # git waits for the hook's output pipes to close
            os.dup2(devnull, fd)
        env, deadline = _outside_quarantine(), time.monotonic() + limit
        while time.monotonic() < deadline and ref_value(ref, env) != sha:
            try:
                os.kill(receive_pack, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    finally:
        os._exit(0)


def run(updates: list[list[str]], env: dict) -> int:
    from deis.builder import pipeline
    from deis.builder.controller import Hooks

    app, user, data_dir = env["DEIS_APP"], env["DEIS_USER"], Path(env["DEIS_DATA_DIR"])
    reason = check_updates(app, updates)
    if reason:
        return refuse(reason)
    old, new, ref = updates[0]
    lock = acquire_app_lock(data_dir, app, say)
    if ref_value(ref) != (None if old == ZERO else old):
        return refuse(f"{ref.rsplit('/', 1)[-1]} of {app} changed while this push waited (another push "
                      "landed first). Run `git pull deis master`, then push again.")
    hooks = Hooks.from_env(data_dir)
    hooks.push(user, app, new, env.get("DEIS_FINGERPRINT", ""), env.get("SSH_CONNECTION", ""),
               env.get("SSH_ORIGINAL_COMMAND", ""))
    pipeline.deploy_commit(Path.cwd(), new, app, user, hooks, say, data_dir)
    # A clone checks out the branch that was deployed last.
    subprocess.run(["git", "symbolic-ref", "HEAD", ref], env=_outside_quarantine(), check=False)
    hold_lock_until(lock, ref, new, os.getppid())
    return 0


def main() -> int:
    updates = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        return run(updates, dict(os.environ))
    except BuildError as exc:
        return refuse(str(exc))
    except Exception as exc:  # never a traceback for the pusher; the whole of it in the log
        log = Path(os.environ.get("DEIS_DATA_DIR", ".")) / "logs" / "builder-hook.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as file:
                file.write(f"--- {time.ctime()} {os.environ.get('DEIS_APP')}\n{traceback.format_exc()}")
        except OSError:
            pass
        return refuse(f"The builder failed unexpectedly ({type(exc).__name__}: {exc}); see {log}.")


if __name__ == "__main__":
    sys.exit(main())
