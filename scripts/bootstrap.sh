#!/usr/bin/env bash
# Install what the platform needs on a fresh Debian 12 machine (idempotent): git, ssh and a Python
# virtual environment in .venv. Later components add their packages here.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v ssh >/dev/null || need+=(openssh-client)  # git push to the builder, from this machine too
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
    echo "Installing ${need[*]}..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    echo "Creating the Python environment in .venv..."
    python3 -m venv .venv
fi
