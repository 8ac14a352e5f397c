#!/usr/bin/env bash
# Builds the playground as you and installs it as /usr/local/bin/playground,
# a directory on sudo's secure_path, so that `sudo playground lesson1` and
# every command the program suggests work as typed.
set -euo pipefail
source "$(dirname "$0")/go.sh"
scripts/setup.sh
go build -o bin/playground ./cmd/playground
sudo=()
((EUID == 0)) || sudo=(sudo)
"${sudo[@]}" install -m 0755 bin/playground /usr/local/bin/playground
echo "installed /usr/local/bin/playground: try  sudo playground lesson1"
