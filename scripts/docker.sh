#!/usr/bin/env bash
# Make a local Docker Engine answer on /var/run/docker.sock (Debian 12, as root, no systemd):
# install `docker.io` when dockerd is missing, start dockerd in the background when no daemon
# answers. Idempotent; quick when the daemon is up already.
set -euo pipefail

say() { echo "docker.sh: $*" >&2; }
answers() { curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }

# The apps share one network per namespace, with an explicit subnet (deis/scheduler/addresses.py);
# the engine's own pools serve its other networks (the default bridge, build and test networks,
# the networks of one app from before): 10.224.0.0/12 in /24s is 4,096 networks, where Docker's
# default pools give about 30. Root in a container must not be root on the host: `userns-remap: default` maps it to
# the unprivileged range dockerd gives its `dockremap` user (100000 and up). Both are written to
# daemon.json (merged, never replacing other settings) so that a dockerd started any way picks
# them up; DEIS_DOCKER_ADDRESS_POOL chooses another range.
configure_daemon() {
    local pool="${DEIS_DOCKER_ADDRESS_POOL:-10.224.0.0/12}" size="${DEIS_DOCKER_ADDRESS_POOL_SIZE:-24}"
    mkdir -p /etc/docker
    python3 - "$pool" "$size" <<'PY'
import json, sys
path = "/etc/docker/daemon.json"
try:
    config = json.load(open(path))
except (OSError, ValueError):
    config = {}
wanted = {"default-address-pools": [{"base": sys.argv[1], "size": int(sys.argv[2])}],
          "userns-remap": "default"}
missing = {key: value for key, value in wanted.items() if key not in config}
if missing:
    config.update(missing)
    with open(path + ".tmp", "w") as out:
        json.dump(config, out, indent=2)
    import os
    os.replace(path + ".tmp", path)
    print("written")
PY
}

# With userns-remap every container's root is one uid of the host (100000), and runc gives each
# container a session keyring: the kernel's default quota of 200 keys per uid stops the 201st
# container ("unable to create session key: disk quota exceeded"). 20,000 keys (100 bytes each).
raise_key_quota() {
    local keys=20000 bytes=2000000
    if [ "$(cat /proc/sys/kernel/keys/maxkeys 2>/dev/null || echo 0)" -lt "$keys" ]; then
        sysctl -q -w kernel.keys.maxkeys="$keys" kernel.keys.maxbytes="$bytes" >/dev/null 2>&1 ||
            say "could not raise kernel.keys.maxkeys to $keys: at most about 200 containers will start"
    fi
}
raise_key_quota

# The logger follows every container's output (`logs?follow=1`), and dockerd watches each followed
# json-file log with an inotify instance of its own: past the kernel's 128 instances per user it
# falls back to polling that file every 200 ms, which at 500 apps kept the engine busy and slowed
# every `docker run`. 8,192 instances (a few KB of kernel memory each, when used).
raise_inotify_instances() {
    local instances=8192
    if [ "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)" -lt "$instances" ]; then
        sysctl -q -w fs.inotify.max_user_instances="$instances" >/dev/null 2>&1 ||
            say "could not raise fs.inotify.max_user_instances: the engine polls the logs of containers past 128"
    fi
}
raise_inotify_instances

if answers; then
    if [ "$(configure_daemon)" = written ]; then
        say "address pools and user-namespace remapping written to /etc/docker/daemon.json; restart" \
            "dockerd to use them (until then the engine has networks for about 30 apps, and root in" \
            "a container is root on the host)"
    fi
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Docker Engine (docker.io)"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq docker.io curl; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
fi

configure_daemon >/dev/null
if ! answers; then
    say "starting dockerd (log: /var/log/dockerd.log)"
    # A daemon killed uncleanly leaves its pid file behind and refuses to start.
    rm -f /var/run/docker.pid
    nohup dockerd >>/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 100); do
        if answers; then break; fi
        sleep 0.2
    done
fi
if ! answers; then
    say "dockerd did not answer within 20 s; see /var/log/dockerd.log"
    exit 1
fi
