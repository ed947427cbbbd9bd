"""The one error type commands raise: click prints it as "Error: ..." and the command exits 1."""

import click


class DeisError(click.ClickException):
    exit_code = 1
