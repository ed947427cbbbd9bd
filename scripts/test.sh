#!/usr/bin/env bash
# `make test`: the whole suite on SQLite (the embedded default), then the API suite on PostgreSQL.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0

echo "=== Services the tests use: Docker Engine, HAProxy"
scripts/docker.sh || status=1
scripts/haproxy.sh >/dev/null || status=1

echo "=== Test suite on SQLite"
$PY -m pytest tests -q -p no:cacheprovider || status=1

echo "=== API test suite on PostgreSQL"
if url=$(scripts/postgres.sh); then
    DATABASE_URL="$url" $PY -m pytest tests/controller -q -p no:cacheprovider || status=1
else
    echo "PostgreSQL could not be set up" >&2
    status=1
fi
exit $status
