"""gunicorn's server hooks for the controller (`--config python:deis.controller.gunicorn_hooks`).

gunicorn sets umask 022 when it detaches (`--daemon`); the arbiter writes the pid file and the
error log, so it takes the platform's private umask back before it writes anything.

The arbiter imports the project (`--preload`) and forks its workers from it: a worker closes any
database connection it would inherit (none is opened at import; this keeps it so)."""

from deis import files


def on_starting(server):
    files.private()


def post_fork(server, worker):
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
