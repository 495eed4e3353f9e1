#!/usr/bin/env bash
# bench/runbook.sh: `tcpcheck run all` beside the manual runbook an operator
# types for the same job (issue 10), against a loopback server that keeps the
# connection open (as a real server does) and against a refused port.
# Target (issue 10): run all at most 0.5x the runbook, median, both cases.
# Usage: bench/runbook.sh [RUNS]     (TCPCHECK_BIN=path to use another binary)
# Writes bench/out/runbook.json (hyperfine --export-json).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}

. bench/lib.sh
bench_binary runbook
bench_work runbook
bench_hold_listener
open_port=$hold_port
# A port nothing listens on: bound, never listening (so the kernel refuses it).
refused_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# The runbook, one shell script: what an operator types for the same diagnosis.
cat > "$work/runbook.sh" <<'SH'
#!/bin/sh
port=$1
getent ahosts 127.0.0.1
ip route get 127.0.0.1
nc -vz -w 3 127.0.0.1 "$port"
ss -tlnp
iptables-save -c
nft list ruleset
cat /proc/sys/fs/file-nr /proc/net/sockstat
nstat -az
for f in /var/log/syslog /var/log/messages /var/log/kern.log; do [ -r "$f" ] && tail -n 2000 "$f"; done
journalctl -k -n 2000 --no-pager
exit 0
SH
chmod +x "$work/runbook.sh"

hyperfine -N -i --warmup 3 --runs "$runs" --export-json bench/out/runbook.json \
  -n "runbook, open" "$work/runbook.sh $open_port" \
  -n "tcpcheck run all, open" "$bin run all --target 127.0.0.1:$open_port" \
  -n "runbook, refused" "$work/runbook.sh $refused_port" \
  -n "tcpcheck run all, refused" "$bin run all --target 127.0.0.1:$refused_port" >/dev/null

python3 - bench/out/runbook.json <<'PY'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in r.items()}
print(f"{'command':28} {'median':>9} {'min':>8}")
for k, v in r.items():
    print(f"{k:28} {med[k]:8.1f}ms {min(v['times'])*1000:7.1f}ms")
for case in ("open", "refused"):
    ratio = med[f"tcpcheck run all, {case}"] / med[f"runbook, {case}"]
    print(f"{case:8} tcpcheck/runbook: {ratio:5.2f}x (target <= 0.5x): {'OK' if ratio <= 0.5 else 'OVER'}")
PY
