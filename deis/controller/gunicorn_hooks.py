"""gunicorn's server hooks for the controller (`--config python:deis.controller.gunicorn_hooks`).

gunicorn sets umask 022 when it detaches (`--daemon`); the arbiter writes the pid file and the
error log, so it takes the platform's private umask back before it writes anything."""

from deis import files


def on_starting(server):
    files.private()
