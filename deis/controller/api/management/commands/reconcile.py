"""`python -m deis.controller reconcile`: the deployer's former name (see `deploy`)."""

from .deploy import Command  # noqa: F401
