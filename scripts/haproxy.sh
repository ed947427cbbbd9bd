#!/usr/bin/env bash
# Make HAProxy available for the router (deis/router), then print the path of its binary.
#
#   HAPROXY="$(bash scripts/haproxy.sh)"
#
# For Debian 12 as root. Idempotent and quick when haproxy is there already:
#   - installs the `haproxy` package only when no haproxy binary is found (apt-get update first);
#   - never starts Debian's own haproxy service with its default config: a policy-rc.d that forbids
#     starting services is put in place for the install when none exists, and the service is then
#     disabled at boot (systemd hosts only). The router runs its own HAProxy master with its own
#     configuration, sockets and pid file under the platform data directory.
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

say() { echo "haproxy.sh: $*" >&2; }

find_haproxy() {
    command -v haproxy 2>/dev/null || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; } || true
}

HAPROXY=$(find_haproxy)
if [ -z "$HAPROXY" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo -- "$0" "$@"
        fi
        say "haproxy is missing: run this as root to install it"
        exit 1
    fi
    say "installing haproxy (apt-get update && apt-get install -y haproxy)"
    export DEBIAN_FRONTEND=noninteractive
    POLICY=/usr/sbin/policy-rc.d
    OWN_POLICY=""
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# deis scripts/haproxy.sh: do not start services during this install\nexit 101\n' > "$POLICY"
        chmod 755 "$POLICY"
        OWN_POLICY=1
    fi
    cleanup() { if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; fi; }
    trap cleanup EXIT
    apt-get update -qq >&2
    apt-get install -y -qq haproxy >&2
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now haproxy >&2 2>&1 || true
    fi
    HAPROXY=$(find_haproxy)
    if [ -z "$HAPROXY" ]; then
        say "the haproxy package installed no haproxy binary"
        exit 1
    fi
fi
echo "$HAPROXY"
