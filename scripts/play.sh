#!/usr/bin/env bash
# Sets up, builds and runs the playground: scripts/play.sh [COMMAND [ARGS]]
# With no command it runs lesson 1. Capturing needs root, so a live command
# runs under sudo; the build runs as you.
set -euo pipefail
source "$(dirname "$0")/go.sh"
scripts/setup.sh
go build -o bin/playground ./cmd/playground

args=("$@")
if ((${#args[@]} == 0)); then
	args=(lesson1)
fi
if [[ ${args[0]} == replay ]] || ((EUID == 0)); then
	exec bin/playground "${args[@]}"
fi
exec sudo bin/playground "${args[@]}"
