"""`python -m deis.builder serve` runs the git SSH server in the foreground;
`python -m deis.builder build DIR --app APP --user USER` builds and deploys a directory without SSH.

Both talk to the controller at DEIS_CONTROLLER_URL (default http://127.0.0.1:$DEIS_CONTROLLER_PORT,
port 8000 unless set) with the builder key (DEIS_BUILDER_KEY, else `<DEIS_DATA_DIR>/builder_key`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from deis.builder import BuildError


def data_dir() -> Path:
    from deis.platform import default_data_dir

    return default_data_dir()


def serve(args) -> int:
    from deis.builder.controller import Hooks
    from deis.builder.repos import scratch_dir
    from deis.builder.server import BuilderServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    directory = data_dir()
    server = None
    # Every temporary folder of the server goes under the root its start clears (see scratch_dir).
    tempfile.tempdir = str(scratch_dir(directory))

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)  # `deis-platform down`: leave through the `finally` below
    try:
        server = BuilderServer(directory, Hooks.from_env(directory), host=args.host, port=args.port)
        asyncio.run(server.serve_forever())
    except BuildError as exc:
        print(f"deis builder: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        print(f"deis builder: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close_hooks()
    return 0


def build(args) -> int:
    from deis.builder.controller import Hooks
    from deis.builder.pipeline import deploy_directory

    def say(line: str) -> None:
        print(line, flush=True)

    directory = data_dir()
    try:
        deploy_directory(Path(args.directory), args.app, args.user, Hooks.from_env(directory), say, directory)
    except BuildError as exc:
        lines = str(exc).splitlines() or ["The build failed."]
        print("\n".join(("!     " if i == 0 else "       ") + line for i, line in enumerate(lines)),
              file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from deis.builder import ServerSettings

    os.umask(ServerSettings().umask)  # repositories, caches and checkouts are private (0700/0600)
    parser = argparse.ArgumentParser(prog="python -m deis.builder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve", help="run the git SSH server in the foreground")
    server.add_argument("--host", default=os.environ.get("DEIS_BUILDER_HOST", "0.0.0.0"))
    server.add_argument("--port", type=int, default=int(os.environ.get("DEIS_BUILDER_PORT", "2222")))
    server.set_defaults(run=serve)
    local = commands.add_parser("build", help="build and deploy a directory as APP, acting as USER")
    local.add_argument("directory")
    local.add_argument("--app", required=True)
    local.add_argument("--user", required=True, help="the user the release is made as (needs access)")
    local.set_defaults(run=build)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
