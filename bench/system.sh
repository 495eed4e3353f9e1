#!/usr/bin/env bash
# The system checks against the commands an operator would type, in one run, with the ratios:
#
#   client_config (resolver files, route lookup, interfaces, defaults, proxies)  vs  ip route get; ip addr; ip route show default ...; cat resolv.conf ...
#   resources (fds, sysctls, netstat counters, conntrack, ports, sockstat, memory, load, one probe)  vs  cat/sysctl/nstat of the same files
#   route.list over N routes in every table                                     vs  ip -j route show table all
#   an empty check (tcpcheck's own start-up: process, Lua state, report)         vs  true
#
# Everything runs in a network namespace made for the run (veth 198.18.0.1/24 <-> 198.18.0.2/24 in a second
# namespace, N host routes 198.19.x.y/32 via 198.18.0.2), removed at the end. The only traffic is one
# connect to 198.18.0.2:9 (nothing listens: a reset) made by the resources check.
# Needs root, hyperfine, iproute2, python3.
#
# Usage: sudo bench/system.sh [ROUTES]    (default 10000)
# Env:   RUNS=20 (hyperfine runs per command), TCPCHECK=path to a tcpcheck binary
set -euo pipefail

ROUTES=${1:-10000}
RUNS=${RUNS:-20}
cd "$(dirname "$0")/.."
ROOT=$(pwd)

[[ $(id -u) -eq 0 ]] || { echo "bench/system.sh needs root (network namespaces); run it with sudo" >&2; exit 1; }
for tool in hyperfine ip nstat python3; do
  command -v "$tool" >/dev/null || { echo "bench/system.sh needs $tool" >&2; exit 1; }
done
[[ $ROUTES =~ ^[0-9]+$ && $ROUTES -ge 1 && $ROUTES -le 60000 ]] || { echo "ROUTES must be 1-60000" >&2; exit 1; }

if [[ -z ${TCPCHECK:-} ]]; then
  echo "building tcpcheck (release, scratch path .build-release)…"
  swift build -c release --product tcpcheck --scratch-path .build-release >/dev/null
  TCPCHECK="$ROOT/.build-release/release/tcpcheck"
fi

A="tcbsysa$$" B="tcbsysb$$"
WORK=$(mktemp -d)
cleanup() {
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$A"; ip netns add "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
ip link add vbench$$ netns "$A" type veth peer name vpeer$$ netns "$B"
ip -n "$A" addr add 198.18.0.1/24 dev vbench$$; ip -n "$A" link set vbench$$ up
ip -n "$B" addr add 198.18.0.2/24 dev vpeer$$;  ip -n "$B" link set vpeer$$ up
ip -n "$A" route add default via 198.18.0.2
python3 - "$ROUTES" > "$WORK/routes" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"route add 198.19.{i // 250}.{i % 250 + 1}/32 via 198.18.0.2")
PY
ip -n "$A" -batch "$WORK/routes"
echo "namespace $A: $(ip -n "$A" route show | wc -l) routes in the main table"

in_ns() { printf 'ip netns exec %s %s' "$A" "$*"; }
compare() {   # name, tcpcheck command, standard command
  local name=$1 ours=$2 theirs=$3
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/$name.json" -n tcpcheck "$ours" -n standard "$theirs" >/dev/null 2>&1 \
    || hyperfine --warmup 3 --runs "$RUNS" --export-json "$WORK/$name.json" -n tcpcheck "$ours" -n standard "$theirs" >/dev/null
  python3 - "$WORK/$name.json" "$name" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, theirs = r["tcpcheck"]["mean"] * 1000, r["standard"]["mean"] * 1000
print(f"{sys.argv[2]:<14} tcpcheck {ours:8.2f} ms   standard {theirs:8.2f} ms   ratio tcpcheck/standard {ours / theirs:5.2f}")
PY
}

STD_CLIENT="sh -c 'ip route get 198.18.0.2; ip addr; ip route show default; ip -6 route show default; cat /etc/resolv.conf; grep ^hosts: /etc/nsswitch.conf; grep 198.18.0.2 /etc/hosts; env | grep -i _proxy; true'"
STD_RES="sh -c 'cat /proc/sys/fs/file-nr; sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_syncookies net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports net.ipv4.tcp_max_orphans; nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtSyncookiesSent; cat /proc/net/sockstat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max /proc/meminfo /proc/loadavg; nc -z -w 1 198.18.0.2 9; true'"

echo "mean wall time over $RUNS runs (hyperfine), inside namespace $A:"
compare client_config "$(in_ns "$TCPCHECK" run client_config --target 198.18.0.2:9 --format json)" "$(in_ns "$STD_CLIENT")"
compare resources     "$(in_ns "$TCPCHECK" run resources --target 198.18.0.2:9 --format json)"     "$(in_ns "$STD_RES")"
compare route_dump    "$(in_ns "$TCPCHECK" run bench_routes --checks-dir "$ROOT/bench/checks" --format json)" "$(in_ns ip -j route show table all)"
compare startup       "$(in_ns "$TCPCHECK" run bench_noop --checks-dir "$ROOT/bench/checks" --format json)" "$(in_ns true)"
