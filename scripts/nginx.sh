#!/usr/bin/env bash
# Make nginx available for the router (deis/router), then print the path of its binary.
#
#   NGINX="$(bash scripts/nginx.sh)"
#
# For Debian 12 as root. Idempotent and quick when nginx is there already:
#   - installs the `nginx` package only when no nginx binary is found (apt-get update first);
#   - never starts Debian's own nginx service with its default site: a policy-rc.d that forbids
#     starting services is put in place for the install when none exists, and the service is then
#     disabled at boot (systemd hosts only). The router runs its own nginx master with its own
#     prefix, configuration and pid file under the platform data directory.
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

say() { echo "nginx.sh: $*" >&2; }

find_nginx() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

NGINX=$(find_nginx)
if [ -z "$NGINX" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo -- "$0" "$@"
        fi
        say "nginx is missing: run this as root to install it"
        exit 1
    fi
    say "installing nginx (apt-get update && apt-get install -y nginx)"
    export DEBIAN_FRONTEND=noninteractive
    POLICY=/usr/sbin/policy-rc.d
    OWN_POLICY=""
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# deis scripts/nginx.sh: do not start services during this install\nexit 101\n' > "$POLICY"
        chmod 755 "$POLICY"
        OWN_POLICY=1
    fi
    cleanup() { if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; fi; }
    trap cleanup EXIT
    apt-get update -qq >&2
    apt-get install -y -qq nginx >&2
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now nginx >&2 2>&1 || true
    fi
    NGINX=$(find_nginx)
    if [ -z "$NGINX" ]; then
        say "the nginx package installed no nginx binary"
        exit 1
    fi
fi
echo "$NGINX"
