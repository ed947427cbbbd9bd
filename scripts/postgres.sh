#!/usr/bin/env bash
# Make a local PostgreSQL usable for the controller and its tests, then print its DATABASE_URL.
#
#   export DATABASE_URL="$(bash scripts/postgres.sh)"
#
# For Debian 12 as root, with or without systemd. Idempotent and quick when all is done already:
#   - installs the `postgresql` package only when no server is installed (apt-get update first,
#     only then);
#   - creates a cluster when the installed version has none, and starts it when it is down;
#   - creates (or resets) the login role `deis` / password `deis` with CREATEDB, so tests can
#     create and drop databases of their own, and the database `deis` owned by it.
# Progress goes to stderr; stdout carries only the URL.
set -euo pipefail

ROLE=deis
PASSWORD=deis
DATABASE=deis
CLUSTER=main

say() { echo "postgres.sh: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -- "$0" "$@"
    fi
    say "run this as root (it installs packages and starts the database server)"
    exit 1
fi

installed_version() {
    # The newest PostgreSQL server installed from Debian's packages, like 15.
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$dir" ] || continue
        dir=${dir#/usr/lib/postgresql/}
        dir=${dir%%/*}
        if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$dir" | sort -V | tail -n1)" = "$dir" ]; then
            best=$dir
        fi
    done
    echo "$best"
}

VERSION=$(installed_version)
if [ -z "$VERSION" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL (apt-get update && apt-get install -y postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    VERSION=$(installed_version)
    if [ -z "$VERSION" ]; then
        say "the postgresql package installed no server under /usr/lib/postgresql"
        exit 1
    fi
fi

# pg_lsclusters -h: "<version> <cluster> <port> <status> <owner> <data dir> <log>"
cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c'; }

if [ -z "$(cluster_line)" ]; then
    say "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" >&2
fi

if [ "$(cluster_line | awk '{print $4}')" != "online" ]; then
    say "starting cluster $VERSION/$CLUSTER"
    # Without systemd (containers) pg_ctlcluster runs pg_ctl itself; with it, it goes via systemctl.
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi
PORT=$(cluster_line | awk '{print $3}')

for _ in $(seq 1 50); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 0.2
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    say "PostgreSQL $VERSION/$CLUSTER is not accepting connections on 127.0.0.1:$PORT;"
    say "see /var/log/postgresql/postgresql-$VERSION-$CLUSTER.log"
    exit 1
fi

as_postgres() { runuser -u postgres -- psql -p "$PORT" -X -q -v ON_ERROR_STOP=1 -tA "$@"; }

# One round trip when everything exists already: is the role there with the right rights, and
# is the database there? Only then do we skip the writes.
state=$(as_postgres -d postgres -c "
    SELECT (SELECT count(*) FROM pg_roles WHERE rolname = '$ROLE' AND rolcanlogin
                                              AND (rolcreatedb OR rolsuper))
           || ' ' ||
           (SELECT count(*) FROM pg_database WHERE datname = '$DATABASE')")
role_ok=${state%% *}
db_ok=${state##* }

if [ "$role_ok" != "1" ]; then
    say "creating role $ROLE"
    as_postgres -d postgres <<SQL
DO \$\$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        ALTER ROLE $ROLE WITH LOGIN CREATEDB PASSWORD '$PASSWORD';
    ELSE
        CREATE ROLE $ROLE WITH LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL
fi

if [ "$db_ok" != "1" ]; then
    say "creating database $DATABASE"
    as_postgres -d postgres -c "CREATE DATABASE $DATABASE OWNER $ROLE"
fi

# Prove the URL works (password auth over TCP, as the controller connects), unless told not to.
if [ "${POSTGRES_SH_SKIP_CHECK:-}" != "1" ]; then
    if ! PGPASSWORD=$PASSWORD psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DATABASE" -tAc "SELECT 1" >/dev/null 2>&1; then
        say "could not log in as $ROLE over TCP; the password may differ: resetting it"
        as_postgres -d postgres -c "ALTER ROLE $ROLE WITH LOGIN PASSWORD '$PASSWORD'"
        PGPASSWORD=$PASSWORD psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DATABASE" -tAc "SELECT 1" >/dev/null
    fi
fi

echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
