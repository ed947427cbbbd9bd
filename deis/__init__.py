"""Deis in Python: a Heroku-style platform on Docker containers."""

__version__ = "0.1.0"
# The controller API version the Deis v1 clients compare against (they only warn on mismatch).
API_VERSION = "1.5"
