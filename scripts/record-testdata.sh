#!/usr/bin/env bash
# record-testdata.sh - re-create the packet captures in pkg/capture/testdata.
#
# Every capture is made with real programs (node, nc, python3, curl) talking
# over loopback, recorded with tcpdump. The loss and zero-window captures run
# inside throw-away network namespaces. The script is idempotent: it
# overwrites the files it makes (listed in OUTPUTS) and regenerates
# testdata/README.md from them. Other files in testdata/ are left alone.
#
# Usage (as root, from anywhere):  scripts/record-testdata.sh
#
# Needs: tcpdump, tshark, editcap, nc (openbsd), node, python3, curl,
# iptables (with the "statistic" match), ip (iproute2), ss, go.
# Ports used: 4000-4006 on 127.0.0.1 / ::1 (4004 and 4005 only inside the
# namespaces).
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
	echo "record-testdata.sh: must be run as root (tcpdump, ip netns, iptables)" >&2
	exit 1
fi
for tool in tcpdump tshark editcap nc node python3 curl iptables ip ss go; do
	command -v "$tool" >/dev/null || {
		echo "record-testdata.sh: $tool not found" >&2
		exit 1
	}
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/pkg/capture/testdata
TMP=$(mktemp -d /tmp/record-testdata.XXXXXX)
NS_LOSS=tcppg-loss
NS_ZWIN=tcppg-zwin

PORT_HELLO=4000
PORT_HTTP=4001
PORT_REFUSED=4002
PORT_IPV6=4003
PORT_LOSS=4004
PORT_ZWIN=4005
PORT_ANY=4006

OUTPUTS=(
	nc-hello.pcap http-curl.pcap refused.pcap ipv6.pcap loss.pcap
	zero-window.pcap nc-hello.pcapng any-sll.pcap any-sll2.pcap
	nc-hello-null.pcap ipv6-null.pcap nc-hello-loop.pcap nc-hello-raw.pcap
)

PIDS=()     # background processes still running
LAST_PID="" # set by start_bg
declare -A TD_LOG # tcpdump PID -> its log file

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'record-testdata.sh: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	local rc=$? pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	ip netns del "$NS_LOSS" 2>/dev/null || true
	ip netns del "$NS_ZWIN" 2>/dev/null || true
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg LOGNAME CMD... : run CMD in the background, output to $TMP/LOGNAME.
start_bg() {
	local logname=$1
	shift
	"$@" >"$TMP/$logname" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop_pid PID [SIGNAL] : signal a background process and reap it.
stop_pid() {
	kill -s "${2:-TERM}" "$1" 2>/dev/null || true
	reap_pid "$1"
}

# reap_pid PID : wait for a background process to exit by itself.
reap_pid() {
	local pid=$1 p keep=()
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# in_ns NS CMD... : run CMD in network namespace NS ("" = the host).
in_ns() {
	local ns=$1
	shift
	if [[ -n $ns ]]; then
		ip netns exec "$ns" "$@"
	else
		"$@"
	fi
}

# wait_listen NS PORT : wait until something listens on TCP PORT.
wait_listen() {
	local ns=$1 port=$2 i
	for i in $(seq 100); do
		[[ -n $(in_ns "$ns" ss -Hltn "sport = :$port") ]] && return 0
		sleep 0.05
	done
	die "nothing listening on port $port${ns:+ in $ns}"
}

# assert_port_free NS PORT
assert_port_free() {
	[[ -z $(in_ns "$1" ss -Hltn "sport = :$2") ]] || die "port $2 is already in use${1:+ in $1}"
}

# start_tcpdump NS FILE IFACE FILTER [TCPDUMP ARGS...] : sets LAST_PID.
# --immediate-mode: with TPACKET_V3 libpcap otherwise hands packets over only
# when a ring block fills or its 1 s timeout expires, and SIGINT before that
# loses them (short captures came out empty).
# -B 65536 (KiB): lo has offloads on, so libpcap sizes each ring frame for
# the full 256 KiB snaplen; the default 2 MiB buffer holds only ~8 frames and
# a loopback burst overflows it ("packets dropped by kernel").
# -Z root keeps tcpdump from dropping privileges before creating FILE.
start_tcpdump() {
	local ns=$1 file=$2 iface=$3 filter=$4 i
	shift 4
	local logname=tcpdump-$(basename "$file").log
	local -a cmd=(tcpdump -Z root --immediate-mode -B 65536 -i "$iface" -U -w "$file" "$@" "$filter")
	# Not via in_ns: a backgrounded shell function would be a subshell that
	# ignores SIGINT instead of tcpdump itself receiving it.
	[[ -z $ns ]] || cmd=(ip netns exec "$ns" "${cmd[@]}")
	start_bg "$logname" "${cmd[@]}"
	TD_LOG[$LAST_PID]=$TMP/$logname
	for i in $(seq 100); do
		grep -q 'listening on' "$TMP/$logname" && {
			sleep 0.2
			return 0
		}
		kill -0 "$LAST_PID" 2>/dev/null || die "tcpdump failed: $(cat "$TMP/$logname")"
		sleep 0.05
	done
	die "tcpdump did not start: $(cat "$TMP/$logname")"
}

# stop_tcpdump PID : let it flush, SIGINT, wait, and insist on no drops.
stop_tcpdump() {
	local log=${TD_LOG[$1]}
	sleep 0.5
	stop_pid "$1" INT
	grep -q '^0 packets dropped by kernel' "$log" ||
		die "tcpdump lost packets: $(tr '\n' ' ' <"$log")"
}

# new_netns NS : fresh namespace with lo up, MTU 1500 and no GSO/TSO, so the
# capture shows wire-sized (<= 1500 byte) segments instead of 64 KiB ones.
new_netns() {
	local ns=$1
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link set lo mtu 1500
	# MTU alone is not enough: lo does TSO/GSO, and tcpdump sees the
	# unsegmented super-packets (up to 16 KiB seen with MTU 1500).
	ip -n "$ns" link set lo gso_max_size 1500 gso_max_segs 1 ||
		log "warning: could not limit gso_max_size/gso_max_segs on lo in $ns"
	if command -v ethtool >/dev/null; then
		ip netns exec "$ns" ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true
	fi
}

count_filter() { # FILE DISPLAYFILTER
	tshark -r "$1" -Y "$2" 2>/dev/null | wc -l
}

npackets() {
	tcpdump -r "$1" 2>/dev/null | wc -l
}

# finish NAME [MIN] : check it has at least MIN (default 2) packets, then
# move the capture from $TMP into testdata/.
finish() {
	local n
	n=$(npackets "$TMP/$1")
	((n >= ${2:-2})) || die "$1: only $n packets captured"
	install -m 0644 "$TMP/$1" "$OUT/$1"
	log "$1: $(npackets "$OUT/$1") packets, $(stat -c %s "$OUT/$1") bytes"
}

mkdir -p "$OUT"
for f in "${OUTPUTS[@]}"; do
	rm -f "$OUT/$f"
done
# The part of README.md that scripts/record-hard-testdata.sh writes (after
# its marker line) describes captures this script does not make: keep it.
HARD_MARKER='<!-- record-hard-testdata.sh: everything below is generated by scripts/record-hard-testdata.sh -->'
touch "$TMP/README-hard.md"
[[ -f $OUT/README.md ]] && awk -v m="$HARD_MARKER" '$0 == m {on = 1} on' "$OUT/README.md" >"$TMP/README-hard.md"
rm -f "$OUT/README.md"

# --- helper programs ----------------------------------------------------------

# The learner's Node.js server: log what arrives, answer "Hello from server".
cat >"$TMP/server.js" <<'EOF'
const net = require('net');
const host = process.argv[2];
const port = Number(process.argv[3]);

const server = net.createServer((socket) => {
  console.log('client connected', socket.remotePort);
  socket.on('data', (data) => {
    console.log('received:', JSON.stringify(data.toString()));
    socket.write('Hello from server');
  });
  socket.on('end', () => console.log('client ended'));
  socket.on('error', (err) => console.log('socket error:', err.message));
});
server.listen(port, host, () => console.log(`listening on ${host}:${port}`));
EOF

# Bulk sender / receivers for the loss and zero-window captures.
cat >"$TMP/tcpapp.py" <<'EOF'
import signal, socket, sys

def payload(n):
    line = b"%06d the quick brown fox jumps over the lazy dog\n"
    return b"".join(line % i for i in range(n // len(line % 0) + 1))[:n]

def listener(host, port, rcvbuf=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        # Must be set before listen() so the accepted socket inherits it
        # (and the SYN-ACK advertises a small window scale).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((host, port))
    s.listen(1)
    return s

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "sink":      # read until EOF, report the count, close
    conn, _ = listener(host, port).accept()
    n = 0
    while True:
        b = conn.recv(65536)
        if not b:
            break
        n += len(b)
    conn.sendall(b"received %d bytes\n" % n)
    conn.close()
    print("sink: received", n, "bytes")
elif mode == "stall":   # accept, never read
    conn, _ = listener(host, port, int(sys.argv[4])).accept()
    print("stall: accepted, rcvbuf now",
          conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)
    signal.pause()
elif mode == "send":    # send N bytes, half-close, print the reply
    n, sndbuf = int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0
    s = socket.socket()
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.connect((host, port))
    print("send: connected, sending", n, "bytes", flush=True)
    s.sendall(payload(n))
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        reply += b
    s.close()
    print("send: reply", reply)
else:
    sys.exit("unknown mode " + mode)
EOF

log "building scripts/relink"
(cd "$ROOT" && go build -o "$TMP/relink" ./scripts/relink) ||
	die "go build ./scripts/relink failed (go.mod/go.sum need golang.org/x/net for gopacket/pcapgo?)"

# --- 1. nc-hello.pcap: node server + nc client ---------------------------------

log "nc-hello.pcap"
assert_port_free "" $PORT_HELLO
start_bg node-hello.log node "$TMP/server.js" 127.0.0.1 $PORT_HELLO
node_pid=$LAST_PID
wait_listen "" $PORT_HELLO
start_tcpdump "" "$TMP/nc-hello.pcap" lo "tcp port $PORT_HELLO"
td=$LAST_PID
# nc sends "hello\n" and prints the reply. Debian's nc half-closes (sends
# FIN) as soon as stdin reaches EOF, so keep stdin open for 0.5 s: the reply
# comes first, then nc's FIN, then node's FIN (node ends on 'end').
reply=$( (printf 'hello\n' && sleep 0.5) | nc -q 1 127.0.0.1 $PORT_HELLO)
stop_tcpdump "$td"
stop_pid "$node_pid"
[[ $reply == "Hello from server" ]] || die "nc-hello: unexpected reply '$reply'"
finish nc-hello.pcap 10

# --- 2. http-curl.pcap: python http.server + curl -----------------------------

log "http-curl.pcap"
mkdir -p "$TMP/www"
printf 'Hello from the TCP playground!\n' >"$TMP/www/hello.txt"
assert_port_free "" $PORT_HTTP
start_bg http-server.log python3 -m http.server $PORT_HTTP --bind 127.0.0.1 --directory "$TMP/www"
http_pid=$LAST_PID
wait_listen "" $PORT_HTTP
start_tcpdump "" "$TMP/http-curl.pcap" lo "tcp port $PORT_HTTP"
td=$LAST_PID
body=$(curl -sS --max-time 10 http://127.0.0.1:$PORT_HTTP/hello.txt)
stop_tcpdump "$td"
stop_pid "$http_pid"
[[ $body == "Hello from the TCP playground!" ]] || die "http-curl: unexpected body '$body'"
finish http-curl.pcap 10

# --- 3. refused.pcap: SYN to a closed port, RST+ACK back -----------------------

log "refused.pcap"
assert_port_free "" $PORT_REFUSED
start_tcpdump "" "$TMP/refused.pcap" lo "tcp port $PORT_REFUSED"
td=$LAST_PID
if nc -w 2 127.0.0.1 $PORT_REFUSED </dev/null 2>/dev/null; then
	die "refused: connection to port $PORT_REFUSED unexpectedly succeeded"
fi
stop_tcpdump "$td"
finish refused.pcap

# --- 4. ipv6.pcap: node server on [::1] + nc -6 --------------------------------

log "ipv6.pcap"
assert_port_free "" $PORT_IPV6
start_bg node-ipv6.log node "$TMP/server.js" ::1 $PORT_IPV6
node_pid=$LAST_PID
wait_listen "" $PORT_IPV6
start_tcpdump "" "$TMP/ipv6.pcap" lo "tcp port $PORT_IPV6"
td=$LAST_PID
reply=$( (printf 'hello over IPv6\n' && sleep 0.5) | nc -6 -q 1 ::1 $PORT_IPV6)
stop_tcpdump "$td"
stop_pid "$node_pid"
[[ $reply == "Hello from server" ]] || die "ipv6: unexpected reply '$reply'"
finish ipv6.pcap 10

# Client and server of the namespace captures run on one CPU: loopback
# delivers a packet on the sending CPU, and with the two ends (and the
# ACK-clocked sends from softirq) on different CPUs the capture order can
# differ from the sending order.
PIN=()
if command -v taskset >/dev/null; then
	PIN=(taskset -c 0)
fi

# --- 5. loss.pcap: 128 KiB upload, ~5% of client->server segments dropped ------

LOSS_BYTES=131072
loss_ok=""
for attempt in 1 2 3 4 5; do
	log "loss.pcap (attempt $attempt)"
	new_netns "$NS_LOSS"
	# INPUT (not OUTPUT): tcpdump sees a dropped segment on lo before
	# netfilter drops it, so the capture shows the original and then the
	# retransmission.
	ip netns exec "$NS_LOSS" iptables -A INPUT -i lo -p tcp --dport $PORT_LOSS \
		-m statistic --mode random --probability 0.05 -j DROP
	start_tcpdump "$NS_LOSS" "$TMP/loss.pcap" lo "tcp port $PORT_LOSS"
	td=$LAST_PID
	start_bg loss-server.log ip netns exec "$NS_LOSS" "${PIN[@]}" python3 "$TMP/tcpapp.py" sink 127.0.0.1 $PORT_LOSS
	srv=$LAST_PID
	wait_listen "$NS_LOSS" $PORT_LOSS
	ip netns exec "$NS_LOSS" timeout 60 "${PIN[@]}" python3 "$TMP/tcpapp.py" send 127.0.0.1 $PORT_LOSS $LOSS_BYTES \
		>"$TMP/loss-client.log" 2>&1 || die "loss: client failed: $(cat "$TMP/loss-client.log")"
	reap_pid "$srv" # the sink exits after replying
	stop_tcpdump "$td"
	dropped=$(ip netns exec "$NS_LOSS" iptables -nvxL INPUT | awk '$3 == "DROP" {print $1}')
	ip netns del "$NS_LOSS"
	grep -q "received $LOSS_BYTES bytes" "$TMP/loss-client.log" ||
		die "loss: transfer incomplete: $(cat "$TMP/loss-client.log")"
	retrans=$(count_filter "$TMP/loss.pcap" tcp.analysis.retransmission)
	log "loss: iptables dropped $dropped segments, tshark flags $retrans retransmissions"
	if ((retrans >= 2)); then
		loss_ok=1
		break
	fi
done
[[ -n $loss_ok ]] || die "loss: no run produced retransmissions"
finish loss.pcap

# --- 6. zero-window.pcap: receiver with a tiny buffer that never reads ---------

ZWIN_BYTES=307200
zwin_ok=""
for attempt in 1 2 3; do
	log "zero-window.pcap (attempt $attempt)"
	new_netns "$NS_ZWIN"
	start_tcpdump "$NS_ZWIN" "$TMP/zero-window.pcap" lo "tcp port $PORT_ZWIN"
	td=$LAST_PID
	start_bg zwin-server.log ip netns exec "$NS_ZWIN" "${PIN[@]}" python3 "$TMP/tcpapp.py" stall 127.0.0.1 $PORT_ZWIN 4096
	srv=$LAST_PID
	wait_listen "$NS_ZWIN" $PORT_ZWIN
	start_bg zwin-client.log ip netns exec "$NS_ZWIN" "${PIN[@]}" python3 "$TMP/tcpapp.py" send 127.0.0.1 $PORT_ZWIN $ZWIN_BYTES 4096
	cli=$LAST_PID
	sleep 2 # the sender blocks; zero-window probes go out meanwhile
	# Killing the client first leaves its FIN queued behind unsent data;
	# killing the server then resets the connection (unread data).
	stop_pid "$cli"
	stop_pid "$srv"
	stop_tcpdump "$td"
	ip netns del "$NS_ZWIN"
	zw=$(count_filter "$TMP/zero-window.pcap" tcp.analysis.zero_window)
	# Linux probes a zero window with a bare ACK carrying seq = snd_una - 1,
	# which tshark labels "keep-alive" (its zero_window_probe wants 1 byte).
	zwp=$(count_filter "$TMP/zero-window.pcap" tcp.analysis.keep_alive)
	log "zero-window: $zw zero-window segments, $zwp window probes (tshark: keep-alive)"
	if ((zw > 0 && zwp > 0)); then
		zwin_ok=1
		break
	fi
done
[[ -n $zwin_ok ]] || die "zero-window: no zero window in the capture"
finish zero-window.pcap

# --- 7. nc-hello.pcapng: the same packets as pcapng ----------------------------

log "nc-hello.pcapng"
editcap -F pcapng "$OUT/nc-hello.pcap" "$TMP/nc-hello.pcapng"
finish nc-hello.pcapng

# --- 8. any-sll.pcap / any-sll2.pcap: "any" device, Linux cooked headers -------

log "any-sll.pcap, any-sll2.pcap"
assert_port_free "" $PORT_ANY
start_bg node-any.log node "$TMP/server.js" 127.0.0.1 $PORT_ANY
node_pid=$LAST_PID
wait_listen "" $PORT_ANY
# The same conversation three times: any/SLL, any/SLL2 and lo (reference,
# not kept) so we can tell whether "any" shows loopback packets twice.
start_tcpdump "" "$TMP/any-sll.pcap" any "tcp port $PORT_ANY" -y LINUX_SLL
td1=$LAST_PID
start_tcpdump "" "$TMP/any-sll2.pcap" any "tcp port $PORT_ANY" -y LINUX_SLL2
td2=$LAST_PID
start_tcpdump "" "$TMP/any-lo-reference.pcap" lo "tcp port $PORT_ANY"
td3=$LAST_PID
reply=$( (printf 'hello via any\n' && sleep 0.5) | nc -q 1 127.0.0.1 $PORT_ANY)
stop_tcpdump "$td1"
stop_pid "$td2" INT
stop_pid "$td3" INT
stop_pid "$node_pid"
[[ $reply == "Hello from server" ]] || die "any: unexpected reply '$reply'"
ANY_LO=$(npackets "$TMP/any-lo-reference.pcap")
ANY_SLL=$(npackets "$TMP/any-sll.pcap")
ANY_SLL2=$(npackets "$TMP/any-sll2.pcap")
log "any: lo saw $ANY_LO packets, any/SLL $ANY_SLL, any/SLL2 $ANY_SLL2"
finish any-sll.pcap
finish any-sll2.pcap

# --- 9. other link types, rewritten from the lo captures -----------------------

log "null / loop / raw link types"
"$TMP/relink" -to null "$OUT/nc-hello.pcap" "$TMP/nc-hello-null.pcap" >&2
"$TMP/relink" -to null "$OUT/ipv6.pcap" "$TMP/ipv6-null.pcap" >&2
"$TMP/relink" -to loop "$OUT/nc-hello.pcap" "$TMP/nc-hello-loop.pcap" >&2
"$TMP/relink" -to raw "$OUT/nc-hello.pcap" "$TMP/nc-hello-raw.pcap" >&2
# The rewritten files must decode to exactly the same TCP packets.
tcp_summary() {
	tshark -r "$1" -T fields -e frame.time_epoch -e frame.len -e ip.src -e ipv6.src \
		-e tcp.srcport -e tcp.dstport -e tcp.flags.str -e tcp.seq_raw -e tcp.len 2>/dev/null |
		awk -F'\t' -v OFS='\t' -v d="$2" '{$2 -= d; print}'
}
for pair in nc-hello-null:nc-hello:10 ipv6-null:ipv6:10 nc-hello-loop:nc-hello:10 nc-hello-raw:nc-hello:14; do
	IFS=: read -r new orig delta <<<"$pair"
	if ! diff <(tcp_summary "$OUT/$orig.pcap" "$delta") <(tcp_summary "$TMP/$new.pcap" 0) >/dev/null; then
		die "$new.pcap does not decode like $orig.pcap"
	fi
	finish "$new.pcap"
done

# --- README.md -------------------------------------------------------------------

linktype() { tcpdump -r "$1" -c 1 2>&1 >/dev/null | sed -n 's/.*link-type \([^,]*\),.*/\1/p'; }
tdlines() { TZ=UTC tcpdump -# -n -r "$1" 2>/dev/null; }

# section FILE TITLE-TEXT : header, link type, count, and tcpdump excerpt.
# Short captures are shown in full; long ones as the first 6 lines, the
# frames tshark's TCP analysis flags, and the last 3 lines.
section() {
	local f=$1 how=$2 n lines
	n=$(npackets "$OUT/$f")
	printf '\n## %s\n\n%s\n\n' "$f" "$how"
	printf -- '- link type: %s\n' "$(linktype "$OUT/$f")"
	printf -- '- packets: %s, file size: %s bytes\n' "$n" "$(stat -c %s "$OUT/$f")"
	mapfile -t lines < <(tdlines "$OUT/$f")
	if ((n <= 16)); then
		printf '\n`tcpdump -# -n -r %s` (times UTC):\n\n```\n' "$f"
		printf '%s\n' "${lines[@]}"
		printf '```\n'
		return
	fi
	printf '\nFirst lines of `tcpdump -# -n -r %s` (times UTC):\n\n```\n' "$f"
	printf '%s\n' "${lines[@]:0:6}"
	printf '```\n'
	local notable
	notable=$(tshark -r "$OUT/$f" -Y tcp.analysis.flags -T fields -e frame.number \
		-e _ws.expert.message -E separator=$'\t' 2>/dev/null)
	if [[ -n $notable ]]; then
		printf '\nFrames with TCP analysis flags (tshark expert info, then the tcpdump line):\n\n```\n'
		local num msg shown=0 total
		total=$(wc -l <<<"$notable")
		while IFS=$'\t' read -r num msg; do
			((++shown <= 30)) || break
			printf '# %s: %s\n%s\n' "$num" "$msg" "${lines[num - 1]}"
		done <<<"$notable"
		((total <= 30)) || printf '# ... and %d more flagged frames\n' $((total - 30))
		printf '```\n'
	fi
	printf '\nLast lines:\n\n```\n'
	printf '%s\n' "${lines[@]: -3}"
	printf '```\n'
}

# analysis FILE : counts of the tshark TCP analysis flags present.
analysis() {
	local f=$1 flag c out=""
	for flag in retransmission fast_retransmission spurious_retransmission out_of_order \
		lost_segment ack_lost_segment duplicate_ack zero_window zero_window_probe \
		zero_window_probe_ack window_full window_update keep_alive keep_alive_ack; do
		c=$(count_filter "$OUT/$f" "tcp.analysis.$flag")
		((c > 0)) && out+="${out:+, }$flag $c"
	done
	printf -- '- tshark `tcp.analysis.*` counts: %s\n' "${out:-none}"
}

log "README.md"
{
	cat <<EOF
# pkg/capture test captures

Generated by \`scripts/record-testdata.sh\` (run as root; it re-creates every
file listed here and this README). All traffic is real: Node.js, OpenBSD
\`nc\`, \`python3\` and \`curl\` talking over loopback, recorded with
\`tcpdump --immediate-mode -B 65536 -i lo -U -w FILE 'tcp port N'\` (tcpdump $(tcpdump --version 2>&1 | sed -n 's/^tcpdump version //p'), Linux
$(uname -r | cut -d- -f1)). Linux \`lo\` captures use link type Ethernet with zero MAC addresses.
Ports are fixed (4000-4006) so captures are easy to read; client ports,
sequence numbers and timestamps change on every run. \`loss.pcap\` and
\`zero-window.pcap\` are random by nature and differ between runs (the
script checks that they still show retransmissions / a zero window).

The excerpts below are \`tcpdump -# -n -r FILE\` output with times in UTC;
the leading number is the packet (frame) number.
EOF

	section nc-hello.pcap "The learner's Node.js server (\`net.createServer\`, on 'data' logs and
\`socket.write(\"Hello from server\")\`) on 127.0.0.1:$PORT_HELLO; client
\`(printf 'hello\\n'; sleep 0.5) | nc -q 1 127.0.0.1 $PORT_HELLO\`. Handshake, 6 bytes up,
17 bytes down, then when its stdin closes nc sends FIN and node answers with
its FIN. (Without the sleep, Debian's nc sends FIN right after \"hello\", a
half-close, and the reply comes after it.)"

	section http-curl.pcap "\`python3 -m http.server $PORT_HTTP --bind 127.0.0.1\` serving a 31-byte hello.txt,
fetched with \`curl http://127.0.0.1:$PORT_HTTP/hello.txt\`. The server speaks HTTP/1.0,
so it closes first (server FIN) after the response."

	section refused.pcap "\`nc 127.0.0.1 $PORT_REFUSED\` with nothing listening: SYN answered by RST+ACK."

	section ipv6.pcap "The same Node.js server listening on [::1]:$PORT_IPV6, client
\`(printf 'hello over IPv6\\n'; sleep 0.5) | nc -6 -q 1 ::1 $PORT_IPV6\`. Data both ways, FIN/FIN
close."

	section loss.pcap "A 128 KiB upload (python3 client -> python3 server that replies
\"received 131072 bytes\" and closes) inside a network namespace whose lo has
MTU 1500 and GSO limited to one segment (\`ip link set lo gso_max_size 1500
gso_max_segs 1\`), with \`iptables -A INPUT -i lo -p tcp --dport $PORT_LOSS -m statistic
--mode random --probability 0.05 -j DROP\`. Dropped segments were captured
(the tap on lo runs before netfilter INPUT), so each appears once as sent
and again as a retransmission. iptables dropped $dropped segments in this run.
Both ends are pinned to CPU 0 (\`taskset\`) so capture order = send order.
The loopback RTT is only tens of microseconds and tshark calls a resent
segment \"out-of-order\" rather than \"retransmission\" when it comes less than
the handshake RTT after the highest segment, so some retransmissions are
labelled out-of-order below; a decoder should look at sequence numbers."
	analysis loss.pcap

	section zero-window.pcap "Inside a namespace (lo MTU 1500, no GSO): a python3 server sets
SO_RCVBUF=4096 on the listening socket, accepts and never reads; a python3
client with SO_SNDBUF=4096 tries to send 300 KiB and blocks. After 2 s
the client is killed (its FIN stays queued behind unsent data, so it is
never sent) and then the server (unread data, so its kernel sends RST).
The receive window is 2896 bytes with window scale 0. Linux probes the
zero window with bare ACKs carrying seq = snd_una - 1 (tcpdump: \`ack 1, win
63, length 0\` from the client; backoff 200, 400, 800 ms): tshark labels them
\"TCP keep-alive\", not zero_window_probe (which needs 1 byte of data). The
receiver answers with \`win 0\`, but at most one answer per 500 ms
(net.ipv4.tcp_invalid_ratelimit), so some probes get no reply."
	analysis zero-window.pcap

	section nc-hello.pcapng "nc-hello.pcap converted with \`editcap -F pcapng\` (same packets, pcapng
container: SHB, one IDB with link type Ethernet, EPBs)."

	section any-sll.pcap "A conversation like nc-hello (node on 127.0.0.1:$PORT_ANY, client sends
\"hello via any\\n\") captured with \`tcpdump -i any -y LINUX_SLL\` (16-byte Linux
cooked v1 header). Loopback packets are NOT doubled on \`any\`: the lo
capture of the same conversation had $ANY_LO packets, this one $ANY_SLL
(libpcap drops the outgoing copy of loopback packets)."

	section any-sll2.pcap "The same conversation, captured at the same time with
\`tcpdump -i any -y LINUX_SLL2\` (20-byte Linux cooked v2 header, includes
the interface index). $ANY_SLL2 packets. Note: gopacket v1.1.19 has no
LINUX_SLL2 (276) link type, and its \`layers.LinkType\` is a uint8."

	section nc-hello-null.pcap "nc-hello.pcap rewritten by \`go run ./scripts/relink -to null\`: the 14-byte
Ethernet header replaced by a 4-byte little-endian address family (2 =
AF_INET), as macOS writes DLT_NULL. Wire lengths are 10 bytes shorter."

	section ipv6-null.pcap "ipv6.pcap rewritten by \`relink -to null\`: family 30 (macOS AF_INET6),
little-endian."

	section nc-hello-loop.pcap "nc-hello.pcap rewritten by \`relink -to loop\`: DLT_LOOP (108), the same
4-byte family but big-endian (00 00 00 02)."

	section nc-hello-raw.pcap "nc-hello.pcap rewritten by \`relink -to raw\`: LINKTYPE_RAW (101), bare IPv4
packets with no link-layer header. Wire lengths are 14 bytes shorter."
	if [[ -s $TMP/README-hard.md ]]; then
		echo
		cat "$TMP/README-hard.md"
	fi
} >"$TMP/README.md"
install -m 0644 "$TMP/README.md" "$OUT/README.md"

log "done: $OUT"
ls -l "$OUT" >&2
