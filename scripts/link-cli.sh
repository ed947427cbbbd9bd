#!/usr/bin/env bash
# Put `deis` on the PATH (/usr/local/bin) when it is free or already ours, so the README's
# `deis register ...` works as typed. Never replaces someone else's `deis`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$PWD/.venv/bin/deis"
link=/usr/local/bin/deis
if [ -w "$(dirname "$link")" ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
    current=$(readlink "$link" 2>/dev/null || true)
    if [ "$current" != "$target" ]; then
        ln -sfn "$target" "$link"
        echo "Linked $link -> $target"
    fi
fi
