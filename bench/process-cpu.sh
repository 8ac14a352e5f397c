#!/usr/bin/env bash
# process-cpu.sh - what does the process lane cost `playground watch`?
#
# Runs `playground watch --port 4993 --json` (output to a file) around the
# same bench/burst workload, ROUNDS times with the process lane and ROUNDS
# times without (--no-process; the kernel lane runs in both), alternating,
# and reports watch's CPU time during the burst (utime+stime from
# /proc/PID/stat, read once watch says "watching" and again before SIGINT:
# loading the BPF programs is not counted) per captured segment. The target: with the lane, within
# 25% of without. The burst is one process on 127.0.0.1: its calls are on
# the process lane (one event per read and write, so about one process
# event per data segment).
#
# Usage (as root, from any directory):
#   bench/process-cpu.sh [ROUNDS]     (default 3)
#
# Needs: go.
set -euo pipefail

PORT=4993
ROUNDS=${1:-3}
CONNS=${CONNS:-300}
MSGS=${MSGS:-40}

ME=$(basename "$0")
die() {
	printf '%s: %s\n' "$ME" "$*" >&2
	exit 1
}
((EUID == 0)) || die "must be run as root: playground watch opens a live capture"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d /tmp/process-cpu.XXXXXX)
chmod 755 "$TMP"
WATCH_PID=""
cleanup() {
	local rc=$?
	if [[ -n $WATCH_PID ]]; then
		kill -TERM "$WATCH_PID" 2>/dev/null || true
		wait "$WATCH_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT

echo "==> building playground and bench/burst in $TMP"
(cd "$ROOT" && go build -o "$TMP/playground" ./cmd/playground && go build -o "$TMP/burst" ./bench/burst) ||
	die "go build failed"
TICKS=$(getconf CLK_TCK)

# one FLAGS...: sets RESULT to "cpu_seconds segments process_events lost"
one() {
	local out=$TMP/watch.json err=$TMP/watch.err
	: >"$err" # before the start, or the wait below could read the last run's
	"$TMP/playground" watch --port "$PORT" --json "$@" >"$out" 2>"$err" &
	WATCH_PID=$!
	for ((i = 0; i < 600; i++)); do
		grep -q 'watching' "$err" && break
		sleep 0.05
	done
	grep -q watching "$err" || die "watch did not start: $(cat "$err")"
	local cpu0
	cpu0=$(awk '{ print $14 + $15 }' "/proc/$WATCH_PID/stat")
	"$TMP/burst" -port "$PORT" -conns "$CONNS" -msgs "$MSGS" -parallel 4 >/dev/null 2>&1
	# Let the timeline catch up: until the output stops growing for 0.5 s.
	local last=-1 still=0 size
	for ((i = 0; i < 200 && still < 10; i++)); do
		size=$(stat -c %s "$out")
		if ((size == last)); then still=$((still + 1)); else still=0 last=$size; fi
		sleep 0.05
	done
	local cpu
	cpu=$(awk -v t="$TICKS" -v c0="$cpu0" '{ printf "%.3f", ($14 + $15 - c0) / t }' "/proc/$WATCH_PID/stat")
	kill -INT "$WATCH_PID"
	wait "$WATCH_PID" || true
	WATCH_PID=""
	local segs
	segs=$(sed -n 's/^\([0-9]*\) segments captured.*/\1/p' "$err")
	RESULT="$cpu $segs $(grep -c '"source":"process"' "$out" || true) $(sed -n 's/.* \([0-9]*\) process calls lost.*/\1/p' "$err")"
}

printf '%-8s %-12s %10s %10s %10s %12s %6s\n' round lane cpu_s segments process us/segment lost
declare -a WITH WITHOUT
for ((r = 1; r <= ROUNDS; r++)); do
	for lane in with without; do
		flags=()
		[[ $lane == without ]] && flags=(--no-process)
		one "${flags[@]}"
		read -r cpu segs procs lost <<<"$RESULT"
		per=$(awk -v c="$cpu" -v s="$segs" 'BEGIN { printf "%.2f", c * 1e6 / s }')
		printf '%-8s %-12s %10s %10s %10s %12s %6s\n' "$r" "$lane" "$cpu" "$segs" "$procs" "$per" "${lost:--}"
		if [[ $lane == with ]]; then WITH+=("$per"); else WITHOUT+=("$per"); fi
	done
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
W=$(med "${WITH[@]}") WO=$(med "${WITHOUT[@]}")
awk -v w="$W" -v wo="$WO" 'BEGIN {
	r = (w / wo - 1) * 100
	printf "==> median CPU per segment: %.2f us with the process lane, %.2f us without: %+.1f%% (target: within 25%%) %s\n", w, wo, r, (r <= 25 ? "ok" : "MISSED")
}'
