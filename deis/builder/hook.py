"""What the pre-receive hook of an app's repository asks the builder's server to do: build and deploy
the pushed commit before git accepts it, so a push that fails to build or deploy leaves the branch
where it was.

The hook itself (deis/builder/prereceive.py) only passes git's "old new ref" lines on; this runs in
the server, which already knows who pushes (`PushSession`), has its modules imported and may have a
build container started while the pack was received. What `say` prints reaches the pusher as
`remote:` lines, and a non-zero status rejects the push.

Pushes to one app queue on the app's lock. The session keeps the lock until git-receive-pack exits,
i.e. after git has moved the branch to the built commit, and a push whose branch moved while it
waited is refused: the deployed release and the branch never disagree.
"""

from __future__ import annotations

import os
import subprocess
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from deis.builder import BuildError, Output, gitsafe
from deis.builder.repos import ZERO, acquire_app_lock

BRANCHES = ("refs/heads/master", "refs/heads/main")
QUARANTINE = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


@dataclass
class PushSession:
    """One git-receive-pack over SSH: who pushes to which app, and what its hook holds meanwhile."""

    app: str
    user: str
    fingerprint: str
    repo: Path
    ssh_connection: str = ""
    command: str = ""
    standby: object = None  # deis.builder.slug.Standby, started when the session began
    lock: object = None  # the app's build lock (an open file), once the hook has it

    def close(self) -> None:
        """git-receive-pack has exited: the branch is where it stays; free the app for the next push."""
        if self.standby is not None:
            self.standby.discard()
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def refuse(say: Output, message: str) -> int:
    """Print the reason the Heroku way (`!     ` first) and reject the push."""
    for number, line in enumerate(message.splitlines() or ["The push was refused."]):
        say(("!     " if number == 0 else "       ") + line)
    return 1


def git_environment(session: PushSession, hook_env: dict, hook_cwd: str) -> dict:
    """The server's environment without git's variables, plus the quarantine of the pushed objects
    that git gave the hook (paths inside the app's repository only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    repo = session.repo.resolve()
    for name in QUARANTINE:
        value = hook_env.get(name)
        if not isinstance(value, str) or not value:
            continue
        for path in value.split(":"):
            if not Path(hook_cwd, path.strip('"')).resolve().is_relative_to(repo):
                raise BuildError(f"Unexpected {name} from git: {value}")
        env[name] = ":".join(str(Path(hook_cwd, p.strip('"')).resolve()) for p in value.split(":"))
    return env


def _outside_quarantine(env: dict) -> dict:
    """For ref reads and writes: git refuses to update refs while the quarantine is set."""
    return {k: v for k, v in env.items() if k not in QUARANTINE}


def ref_value(repo: Path, ref: str, env: dict) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", "--end-of-options", ref], capture_output=True, text=True,
                          cwd=repo, env=env)
    return done.stdout.strip() or None


def check_updates(app: str, updates: list[list[str]]) -> str | None:
    """Why these ref updates cannot be accepted, or None."""
    for update in updates:
        if len(update) != 3:
            return f"Unexpected input from git: {' '.join(update)}"
        old, new, ref = update
        if gitsafe.object_id_error(old) or gitsafe.object_id_error(new):
            return f"Unexpected input from git: {' '.join(update)[:200]}"
        if ref not in BRANCHES:
            return (f"{app} is deployed from master: push with `git push deis master` "
                    f"({ref} was refused).")
        if new == ZERO:
            return (f"Deleting {ref.rsplit('/', 1)[-1]} of {app} is not allowed: it is what runs. "
                    "Push a commit instead: `git push deis master`.")
    if len(updates) != 1:
        return "Push one branch at a time: `git push deis master`."
    return None


def _run(session: PushSession, updates: list[list[str]], git_env: dict, say: Output, data_dir: Path,
         hooks) -> int:
    from deis.builder import pipeline

    app, repo = session.app, session.repo
    reason = check_updates(app, updates)
    if reason:
        return refuse(say, reason)
    old, new, ref = updates[0]
    session.lock = acquire_app_lock(data_dir, app, say)
    if ref_value(repo, ref, _outside_quarantine(git_env)) != (None if old == ZERO else old):
        return refuse(say, f"{ref.rsplit('/', 1)[-1]} of {app} changed while this push waited (another "
                           "push landed first). Run `git pull deis master`, then push again.")
    hooks.push(session.user, app, new, session.fingerprint, session.ssh_connection, session.command)
    pipeline.deploy_commit(repo, new, app, session.user, hooks, say, data_dir, git_env, session.standby)
    # A clone checks out the branch that was deployed last.
    subprocess.run(["git", "symbolic-ref", "HEAD", ref], cwd=repo, env=_outside_quarantine(git_env),
                   capture_output=True, check=False)
    return 0


def run(session: PushSession, updates: list[list[str]], git_env: dict, say: Output, data_dir: Path,
        hooks) -> int:
    """Build and deploy the pushed commit; the hook's exit status (0 lets git take the push)."""
    try:
        return _run(session, updates, git_env, say, data_dir, hooks)
    except BuildError as exc:
        return refuse(say, str(exc))
    except Exception as exc:  # never a traceback for the pusher; the whole of it in the log
        log = Path(data_dir) / "logs" / "builder-hook.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as file:
                file.write(f"--- {time.ctime()} {session.app}\n{traceback.format_exc()}")
        except OSError:
            pass
        return refuse(say, f"The builder failed unexpectedly ({type(exc).__name__}: {exc}); see {log}.")
