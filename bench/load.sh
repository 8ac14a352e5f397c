#!/usr/bin/env bash
# load.sh - does `playground serve --json` keep up with a burst of connections?
#
# Starts `playground serve --port 4992 --json` (stdout and stderr to files),
# waits for "serving on", then runs bench/load: 1000 connections, 100 at a
# time, each writing 3 short messages and reading every "Hello from server"
# before half-closing and waiting for the server's FIN. It waits until the
# output stops growing (bounded), reads the serve process's peak RSS
# (VmHWM), sends SIGINT and counts from the JSON lines and stderr: wire SYN
# and SYN+ACK, server connection and close (targets: 1000 each), kernel
# drops (target: 0) and skipped-events lines (target: 0). A missed target
# is printed as MISSED; the exit status is still 0, since this is a
# measurement. Any setup failure exits non-zero.
#
# Usage (as root, from any directory):
#   bench/load.sh [--keep DIR]
#     --keep DIR   keep serve's output as DIR/load-serve.json and DIR/load-serve.err
#
# Needs: go.
set -euo pipefail

PORT=4992
CONNS=1000
PARALLEL=100
MSGS=3
LOAD_TIMEOUT=60s
SERVE_WAIT=10 # seconds for "serving on", and for serve to stop after SIGINT

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
while (($#)); do
	case $1 in
	--keep)
		(($# >= 2)) || usage
		KEEP_DIR=$2
		shift 2
		;;
	-h | --help) usage 0 ;;
	*)
		printf '%s: unknown argument %q\n' "$ME" "$1" >&2
		usage
		;;
	esac
done

((EUID == 0)) || die "must be run as root: playground serve opens a live capture"
command -v go >/dev/null || die "go not found in PATH"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $ROOT/go.mod && -d $ROOT/cmd/playground ]] || die "$ROOT does not look like the playground repository"
if command -v ss >/dev/null && [[ -n $(ss -Htln "sport = :$PORT") ]]; then
	die "port $PORT is already in use"
fi

TMP=$(mktemp -d /tmp/load-bench.XXXXXX)
chmod 755 "$TMP" # serve may drop root to the sudo user
SERVE_PID=""
cleanup() {
	local rc=$?
	if [[ -n $SERVE_PID ]]; then
		kill -TERM "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> building playground and bench/load in $TMP"
(cd "$ROOT" && go build -o "$TMP/playground" ./cmd/playground && go build -o "$TMP/load" ./bench/load) ||
	die "go build failed"

OUT=$TMP/serve.json
ERR=$TMP/serve.err
echo "==> playground serve --port $PORT --json"
# SERVE_FLAGS adds flags, e.g. SERVE_FLAGS=--no-kernel to measure without the kernel lane.
"$TMP/playground" serve --port "$PORT" --json ${SERVE_FLAGS:-} >"$OUT" 2>"$ERR" &
SERVE_PID=$!
for ((i = 0; i < SERVE_WAIT * 20; i++)); do
	grep -q 'serving on' "$ERR" && break
	kill -0 "$SERVE_PID" 2>/dev/null || die "serve exited: $(cat "$ERR")"
	sleep 0.05
done
grep -q 'serving on' "$ERR" || die "serve did not say \"serving on\" within $SERVE_WAIT s: $(cat "$ERR")"

echo "==> $CONNS connections x $MSGS messages, $PARALLEL at a time"
LOAD_RC=0
"$TMP/load" run -addr "127.0.0.1:$PORT" -conns "$CONNS" -parallel "$PARALLEL" -msgs "$MSGS" \
	-timeout "$LOAD_TIMEOUT" >"$TMP/load.out" || LOAD_RC=$?
((LOAD_RC == 0)) || die "the load client failed (status $LOAD_RC)"
kill -0 "$SERVE_PID" 2>/dev/null || die "serve died during the burst: $(tail -5 "$ERR")"
RESULT=$(tail -1 "$TMP/load.out")
BURST_S=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$RESULT")
FAILED=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$RESULT")

# Let the timeline catch up: wait until the output has not grown for 0.5 s
# (at most 10 s), so that SIGINT measures what serve shows, not how fast
# the shell sends it.
last=-1 still=0
for ((i = 0; i < 200 && still < 10; i++)); do
	size=$(stat -c %s "$OUT")
	if ((size == last)); then still=$((still + 1)); else still=0 last=$size; fi
	sleep 0.05
done

PEAK_KIB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVE_PID/status")
[[ -n $PEAK_KIB ]] || die "no VmHWM for serve (pid $SERVE_PID)"
kill -INT "$SERVE_PID"
SERVE_RC=0
for ((i = 0; i < SERVE_WAIT * 20; i++)); do
	kill -0 "$SERVE_PID" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$SERVE_PID" 2>/dev/null && die "serve did not stop within $SERVE_WAIT s of SIGINT"
wait "$SERVE_PID" || SERVE_RC=$?
SERVE_PID=""

if [[ -n $KEEP_DIR ]]; then
	mkdir -p "$KEEP_DIR"
	cp "$OUT" "$KEEP_DIR/load-serve.json"
	cp "$ERR" "$KEEP_DIR/load-serve.err"
fi

declare -A C
while IFS='=' read -r k v; do
	C[$k]=$v
done < <("$TMP/load" count "$OUT" "$ERR") || die "counting failed"

check() { # check LABEL VALUE TARGET
	local verdict=ok
	[[ $2 == "$3" ]] || verdict="MISSED (target $3)"
	printf '%-28s %8s  %s\n' "$1" "$2" "$verdict"
}
echo "==> results"
printf '%-28s %8s s  (%s failed connections)\n' "burst duration" "$BURST_S" "$FAILED"
printf '%-28s %8s MiB\n' "serve peak RSS (VmHWM)" "$(awk -v k="$PEAK_KIB" 'BEGIN { printf "%.1f", k / 1024 }')"
printf '%-28s %8s\n' "serve exit status" "$SERVE_RC"
check "wire SYN" "${C[wire_SYN]}" "$CONNS"
check "wire SYN+ACK" "${C[wire_SYN+ACK]}" "$CONNS"
check "server connection" "${C[server_connection]}" "$CONNS"
check "server close (connections)" "${C[server_close]}" "$CONNS"
check "kernel drops" "${C[kernel_drops]}" 0
check "skipped-events lines" "${C[skipped_lines]}" 0
if lost=$(grep -o '[0-9]* kernel events lost' "$ERR"); then
	check "kernel lane: events lost" "${lost%% *}" 0
	printf '%-28s %8s\n' "kernel lane: events shown" "$(grep -c '"source":"kernel"' "$OUT")"
fi
check "failed connections" "$FAILED" 0
printf '%-28s %8s\n' "segments captured" "${C[segments_captured]}"
printf 'other counts: wire ACK %s DATA %s FIN %s RST %s; server data %s write %s error %s; skipped events %s (stderr %s); non-JSON lines %s\n' \
	"${C[wire_ACK]}" "${C[wire_DATA]}" "${C[wire_FIN]}" "${C[wire_RST]}" "${C[server_data]}" "${C[server_write]}" \
	"${C[server_error]}" "${C[skipped_events]}" "${C[not_shown_stderr]}" "${C[not_json]}"
[[ -z $KEEP_DIR ]] || echo "serve output kept in $KEEP_DIR"
