#!/usr/bin/env bash
# replay-vs-tcpdump.sh - how fast is `playground replay` next to `tcpdump -r`?
#
# Records a loopback burst of ~43,000 TCP segments (bench/burst: an echo
# server and a client in one process, port 4990), then times
# `playground replay FILE >/dev/null` against `tcpdump -n -r FILE >/dev/null`,
# alternating, one warm-up plus 5 measured runs each, and prints the median
# wall times, their ratio and replay's peak RSS. `tshark -r` is timed once
# for reference. Targets: replay/tcpdump <= 1.0 and replay peak RSS <= 30 MiB.
# A missed target is printed as MISSED; the exit status is still 0, since
# this is a measurement. Any other failure exits non-zero.
#
# Usage (as root, from any directory):
#   bench/replay-vs-tcpdump.sh [--keep DIR] [--file FILE]
#     --keep DIR   keep the recorded capture as DIR/replay-bench.pcap
#     --file FILE  skip recording and measure an existing capture
#                  (root is then not needed)
#
# Needs: go, tcpdump, GNU time (/usr/bin/time, Debian package "time");
# tshark is optional.
set -euo pipefail

PORT=4990
CONNS=336 # 336 connections x (60 round trips x 2 + 8) segments = 43,008
MSGS=60
PARALLEL=2
RUNS=5
TARGET_PACKETS=43000
TARGET_SLACK=2000
TARGET_RATIO=1.0
TARGET_RSS_MIB=30

ME=$(basename "$0")
die() {
	printf '%s: %s\n' "$ME" "$*" >&2
	exit 1
}
usage() { # usage [EXIT-CODE]
	sed -n '/^# Usage/,/^#$/s/^# \{0,1\}//p' "$0" >&2
	exit "${1:-2}"
}

KEEP_DIR=""
FILE=""
while (($#)); do
	case $1 in
	--keep)
		(($# >= 2)) || usage
		KEEP_DIR=$2
		shift 2
		;;
	--file)
		(($# >= 2)) || usage
		FILE=$2
		shift 2
		;;
	-h | --help) usage 0 ;;
	*)
		printf '%s: unknown argument %q\n' "$ME" "$1" >&2
		usage
		;;
	esac
done
[[ -z $KEEP_DIR || -z $FILE ]] || die "--keep and --file exclude each other (--file already names a kept capture)"

if [[ -z $FILE && ${EUID} -ne 0 ]]; then
	die "must be run as root: it records a capture with tcpdump (or pass --file FILE)"
fi
[[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null ||
	die "GNU time (/usr/bin/time) is missing: install the Debian package \"time\" (apt-get install -y time)"
command -v go >/dev/null || die "go not found in PATH"
command -v tcpdump >/dev/null || die "tcpdump not found: install the Debian package \"tcpdump\""
if [[ -n $FILE ]]; then
	[[ -r $FILE ]] || die "$FILE: cannot read"
	FILE=$(cd "$(dirname "$FILE")" && pwd)/$(basename "$FILE")
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $ROOT/go.mod && -d $ROOT/cmd/playground ]] || die "$ROOT does not look like the playground repository"
TMP=$(mktemp -d /tmp/replay-bench.XXXXXX)
PIDS=()

cleanup() {
	local rc=$? pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

SECONDS=0
echo "==> building playground and bench/burst in $TMP"
(cd "$ROOT" && go build -o "$TMP/playground" ./cmd/playground && go build -o "$TMP/burst" ./bench/burst) ||
	die "go build failed"

DROPS="n/a (--file)"
if [[ -z $FILE ]]; then
	if [[ -n $KEEP_DIR ]]; then
		mkdir -p "$KEEP_DIR"
		FILE=$(cd "$KEEP_DIR" && pwd)/replay-bench.pcap
	else
		FILE=$TMP/replay-bench.pcap
	fi
	echo "==> recording $CONNS connections x $MSGS echoes on 127.0.0.1:$PORT into $FILE"
	# -Z root: do not drop privileges before creating FILE.
	# --immediate-mode -B 65536 -s 256: with offloads on lo, libpcap sizes
	# each ring frame for the snaplen; the default 256 KiB snaplen and 2 MiB
	# buffer drop thousands of packets of this burst. No packet here exceeds
	# ~100 bytes, so -s 256 truncates nothing.
	tcpdump -Z root --immediate-mode -B 65536 -s 256 -i lo -U -w "$FILE" "tcp port $PORT" \
		>"$TMP/tcpdump.log" 2>&1 &
	TD_PID=$!
	PIDS+=("$TD_PID")
	for _ in $(seq 100); do
		grep -q 'listening on' "$TMP/tcpdump.log" && break
		kill -0 "$TD_PID" 2>/dev/null || die "tcpdump failed: $(cat "$TMP/tcpdump.log")"
		sleep 0.05
	done
	grep -q 'listening on' "$TMP/tcpdump.log" || die "tcpdump did not start listening within 5 s"
	"$TMP/burst" -port "$PORT" -conns "$CONNS" -msgs "$MSGS" -parallel "$PARALLEL" -timeout 60s ||
		die "traffic generator failed"
	sleep 0.5 # let the last segments reach the file
	kill -TERM "$TD_PID"
	wait "$TD_PID" || die "tcpdump exited with status $?: $(cat "$TMP/tcpdump.log")"
	forget_pid "$TD_PID"
	DROPS=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$TMP/tcpdump.log")
	[[ -n $DROPS ]] || DROPS="unknown (no summary from tcpdump)"
fi

PACKETS=$(tcpdump -r "$FILE" 2>/dev/null | wc -l)
printf 'capture: %s (%s bytes)\n' "$FILE" "$(stat -c %s "$FILE")"
if ((PACKETS < TARGET_PACKETS - TARGET_SLACK || PACKETS > TARGET_PACKETS + TARGET_SLACK)); then
	printf 'packets: %d (outside %d +- %d)\n' "$PACKETS" "$TARGET_PACKETS" "$TARGET_SLACK"
else
	printf 'packets: %d\n' "$PACKETS"
fi
printf 'kernel drops while recording: %s\n' "$DROPS"

# run_timed CMD... : runs CMD with stdout to /dev/null and
# sets LAST_WALL (seconds) and LAST_RSS (KiB, max resident set of CMD).
run_timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M' -o "$TMP/rss" -- "$@" >/dev/null 2>"$TMP/stderr" ||
		die "$* failed: $(head -5 "$TMP/stderr")"
	t1=$EPOCHREALTIME
	LAST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	LAST_RSS=$(tail -1 "$TMP/rss")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }

REPLAY=("$TMP/playground" replay "$FILE")
TCPDUMP=(tcpdump -n -r "$FILE")

echo "==> warm-up, then $RUNS alternating runs each"
LINES=$("${REPLAY[@]}" 2>/dev/null | wc -l)
tcpdump -n -r "$FILE" >/dev/null 2>&1
TD_T=() TD_M=() PG_T=() PG_M=()
for ((i = 0; i < RUNS; i++)); do
	run_timed "${TCPDUMP[@]}"
	TD_T+=("$LAST_WALL") TD_M+=("$LAST_RSS")
	run_timed "${REPLAY[@]}"
	PG_T+=("$LAST_WALL") PG_M+=("$LAST_RSS")
done
TD_MED=$(median "${TD_T[@]}")
PG_MED=$(median "${PG_T[@]}")
PG_RSS=$(max "${PG_M[@]}")
PG_RSS_MIB=$(awk -v k="$PG_RSS" 'BEGIN { printf "%.1f", k / 1024 }')
TD_RSS_MIB=$(awk -v k="$(max "${TD_M[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')
RATIO=$(awk -v a="$PG_MED" -v b="$TD_MED" 'BEGIN { printf "%.2f", a / b }')

printf 'replay output lines: %d (one per segment expected)\n' "$LINES"
printf 'tcpdump -n -r: median %s s (runs: %s), peak RSS %s MiB\n' "$TD_MED" "${TD_T[*]}" "$TD_RSS_MIB"
printf 'playground replay: median %s s (runs: %s), peak RSS %s MiB\n' "$PG_MED" "${PG_T[*]}" "$PG_RSS_MIB"
awk -v r="$RATIO" -v t="$TARGET_RATIO" \
	'BEGIN { printf "ratio replay/tcpdump: %s (target <= %s)%s\n", r, t, (r + 0 <= t + 0 ? "" : " MISSED") }'
awk -v m="$PG_RSS_MIB" -v t="$TARGET_RSS_MIB" \
	'BEGIN { printf "peak memory target <= %s MiB: %s\n", t, (m + 0 <= t + 0 ? "ok" : "MISSED (" m " MiB)") }'

if command -v tshark >/dev/null; then
	run_timed tshark -r "$FILE"
	printf 'tshark -r (once, reference): %s s, peak RSS %s MiB\n' "$LAST_WALL" \
		"$(awk -v k="$LAST_RSS" 'BEGIN { printf "%.1f", k / 1024 }')"
else
	echo "tshark -r (reference): skipped, tshark not installed"
fi
[[ -z $KEEP_DIR ]] || echo "capture kept: $FILE"
echo "script runtime: ${SECONDS} s"
