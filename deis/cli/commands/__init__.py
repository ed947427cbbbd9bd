"""The `deis` commands, one module per topic of the v1 grammar (apps, auth, config, ...)."""
