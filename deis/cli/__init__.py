"""The `deis` command-line client for the Deis v1 API (entry point: deis.cli.main:main)."""
