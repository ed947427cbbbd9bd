# Two commands on a fresh Debian 12 machine: `make up` (set up and start the platform) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: up down status admin test test-sqlite test-postgres bench clean

up: $(VENV)/.installed
	@scripts/link-cli.sh
	@scripts/docker.sh
	@scripts/haproxy.sh >/dev/null
	@$(PY) -m deis.stack
	@$(PY) -m deis.platform up

down:
	@if [ -x $(PY) ]; then $(PY) -m deis.platform down; else echo "Deis is not installed here."; fi

status: $(VENV)/.installed
	@$(PY) -m deis.platform status

# `make admin USER=name`: make a user a platform administrator (created, with a password prompt, when missing).
admin: $(VENV)/.installed
	@if [ "$(origin USER)" != "command line" ]; then echo "usage: make admin USER=name" >&2; exit 2; fi
	@$(PY) -m deis.platform admin "$(USER)"

# The whole suite on the embedded default (SQLite), then the API suite again on PostgreSQL.
test: $(VENV)/.installed-test
	@scripts/test.sh

test-sqlite: $(VENV)/.installed-test
	$(PY) -m pytest tests -q

test-postgres: $(VENV)/.installed-test
	DATABASE_URL=$$(scripts/postgres.sh) $(PY) -m pytest tests/controller -q

bench: $(VENV)/.installed-test
	$(PY) bench/api.py
	$(PY) bench/runtime.py
	$(PY) bench/deploy.py

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
