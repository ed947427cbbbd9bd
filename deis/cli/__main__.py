"""`python -m deis.cli` runs the `deis` command."""

from .main import main

main()
