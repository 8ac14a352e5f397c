#!/usr/bin/env bash
# Sets up and runs every test: gofmt, go vet, go test -race (the live-capture
# tests need root: run it with sudo, as CI does). Extra arguments go to
# go test, e.g. scripts/test.sh -run Replay -v
set -euo pipefail
source "$(dirname "$0")/go.sh"
scripts/setup.sh --test

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 "$@" ./...
