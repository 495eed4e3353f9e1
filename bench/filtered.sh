#!/usr/bin/env bash
# bench/filtered.sh: a filtered target (issue 10). In a namespace made here
# (198.18.5.1 on its loopback, a DROP rule on the port), `tcpcheck run all
# --timeout 3` beside `nc -w 3` for the same probe.
# Target: the verdict within --timeout + the grace period (0.5 s) + 0.1 s.
# Needs root (namespaces, iptables). Usage: bench/filtered.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
[ "$(id -u)" = 0 ] || { echo "bench/filtered.sh needs root (a network namespace and iptables in it)" >&2; exit 2; }
. bench/lib.sh
bench_binary filtered
ns=tcbench$$
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 198.18.5.1/32 dev lo
ip netns exec "$ns" iptables -A INPUT -p tcp --dport 9 -j DROP

hyperfine -N -i --warmup 1 --runs "$runs" --export-json bench/out/filtered.json \
  -n "nc -w 3" "ip netns exec $ns nc -z -w 3 198.18.5.1 9" \
  -n "tcpcheck run all --timeout 3" "ip netns exec $ns $bin run all --target 198.18.5.1:9 --timeout 3" >/dev/null

python3 - bench/out/filtered.json <<'PY'
import json, statistics, sys
r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items(): print(f"{k:30} {v:6.2f} s median")
t = r["tcpcheck run all --timeout 3"]
print(f"tcpcheck / nc: {t / r['nc -w 3']:4.2f}x; bound 3 + 0.5 + 0.1 = 3.6 s: {'OK' if t <= 3.6 else 'OVER'}")
PY
