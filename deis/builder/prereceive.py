"""The pre-receive hook of every app repository, run by git-receive-pack as `python -I -S`: the
standard library only, so it starts in a few ms. The builder's SSH server does the work (see
deis/builder/hook.py); this passes git's ref updates to it over its unix socket, prints what it
says (git shows it to the pusher as `remote:` lines) and exits with its verdict.

Protocol: one JSON line to the server; back, lines starting with `|` (output) and one `=STATUS`.
"""

import json
import os
import socket
import sys

QUARANTINE = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    path, session = os.environ.get("DEIS_BUILDER_SOCKET"), os.environ.get("DEIS_PUSH_SESSION")
    if not path or not session:
        say("!     Push through the Deis builder: `git push deis master`.")
        return 1
    request = {"session": session, "cwd": os.getcwd(),
               "updates": [line.split() for line in sys.stdin.read().splitlines() if line.strip()],
               "git_env": {name: os.environ[name] for name in QUARANTINE if name in os.environ}}
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect("\0" + path[1:] if path.startswith("@") else path)  # @: an abstract socket
        server.sendall(json.dumps(request).encode() + b"\n")
    except OSError as exc:
        say(f"!     The Deis builder cannot be reached ({exc}); push again in a moment.")
        return 1
    try:
        with server, server.makefile("rb") as answers:
            for answer in answers:
                kind, text = answer[:1], answer[1:].rstrip(b"\n")
                if kind == b"|":
                    sys.stdout.buffer.write(text + b"\n")
                    sys.stdout.flush()
                elif kind == b"=":
                    return int(text or 1)
    except ConnectionError:  # e.g. reset: the builder was killed
        pass
    say("!     The Deis builder stopped before this push was built; push again.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
