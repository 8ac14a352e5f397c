#!/usr/bin/env bash
# Installs what the playground needs on Debian/Ubuntu, only what is missing.
#   scripts/setup.sh          libpcap (to build and run the playground)
#   scripts/setup.sh --test   also tcpdump, tshark, tmux, nc, iptables, iproute2 (for the tests)
# Runs apt-get through sudo unless already root. Safe to run again.
set -euo pipefail

want=(libpcap-dev gcc)
if [[ ${1:-} == --test ]]; then
	# chromium: the HTML diagram is checked in a real browser.
	# python3: a server twin in the process-lane tests; nftables: the lab tests check it is left as it was.
	want+=(tcpdump tshark tmux netcat-openbsd iptables iproute2 curl time chromium python3 nftables)
fi

# Node.js runs the learner's own server from the notes in the tests; any
# node on PATH will do, else Debian's.
if [[ ${1:-} == --test ]] && ! command -v node >/dev/null; then
	want+=(nodejs)
fi

missing=()
for pkg in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]} (no sudo found)" >&2; exit 1; }
	sudo=(sudo)
fi
if ! command -v apt-get >/dev/null; then
	echo "setup: please install these with your package manager: ${missing[*]}" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
# tshark asks whether non-root users may capture; the default (no) is fine.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
