#!/usr/bin/env bash
# Runs each fuzz target for a while (default 60s each) and prints what it found.
#   bench/fuzz.sh [DURATION]      e.g. bench/fuzz.sh 5m
# A crasher is saved by go test under the package's testdata/fuzz/ and makes
# this script exit 1; commit it, and it becomes part of every `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/go.sh
time=${1:-60s}
failed=0
for target in ./pkg/capture:FuzzDecodeTrack ./pkg/timeline:FuzzAppendEscaped; do
	pkg=${target%%:*} name=${target##*:}
	echo "==> $name ($pkg) for $time"
	if out=$(go test -run '^$' -fuzz "^$name\$" -fuzztime "$time" "$pkg" 2>&1); then
		echo "$out" | grep -E 'fuzz: elapsed|^ok' | tail -2
	else
		echo "$out" | tail -20
		failed=1
	fi
done
exit $failed
