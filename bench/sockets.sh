#!/usr/bin/env bash
# Socket listing at 50,000 established connections: tcpcheck's sockets module
# against ss, in one run, with the ratios.
#
#   without owning processes: tcpcheck (sockets.connections)          vs  ss -tan    (target: no slower)
#   with owning processes:    tcpcheck (sockets.connections, owners)  vs  ss -tanp   (target: at least 5x faster)
#     as root the owners come from the BPF task_file iterator; the same run with
#     TCPCHECK_OWNER_SCAN=proc (the /proc walk ss -p does too) is timed beside it.
#
# The connections live in a network namespace made for the run (loopback only,
# 127.0.0.1 <- 127.0.0.2-9), held by bench/sockets_connections.py, and are
# removed at the end. Needs root (namespace, RLIMIT_NOFILE), python3, hyperfine.
#
# Usage: sudo bench/sockets.sh [PAIRS]     (default 25000 pairs = 50,000 sockets)
# Env:   RUNS=5 (hyperfine runs per command), TCPCHECK=path to a tcpcheck binary
set -euo pipefail

PAIRS=${1:-25000}
RUNS=${RUNS:-5}
cd "$(dirname "$0")/.."
ROOT=$(pwd)

[[ $(id -u) -eq 0 ]] || { echo "bench/sockets.sh needs root (network namespace, file limit); run it with sudo" >&2; exit 1; }
for tool in python3 hyperfine ss ip; do
  command -v "$tool" >/dev/null || { echo "bench/sockets.sh needs $tool (apt-get install -y ${tool/ss/iproute2})" >&2; exit 1; }
done
[[ $PAIRS =~ ^[0-9]+$ && $PAIRS -ge 1 && $PAIRS -le 100000 ]] || { echo "PAIRS must be 1-100000" >&2; exit 1; }

if [[ -z ${TCPCHECK:-} ]]; then
  echo "building tcpcheck (release)…"
  swift build -c release --product tcpcheck >/dev/null
  TCPCHECK="$ROOT/.build/release/tcpcheck"
fi

NS="tcbench$$"
WORK=$(mktemp -d)
HOLDER=""
cleanup() {
  [[ -n $HOLDER ]] && kill "$HOLDER" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up

echo "opening $PAIRS loopback connections ($((2 * PAIRS)) sockets) in namespace $NS…"
mkfifo "$WORK/stdin"
ip netns exec "$NS" python3 "$ROOT/bench/sockets_connections.py" "$PAIRS" "$WORK/ready" 900 <"$WORK/stdin" &
HOLDER=$!
exec 3>"$WORK/stdin"   # the holder exits when this closes
for _ in $(seq 1 1500); do
  [[ -s $WORK/ready ]] && break
  kill -0 "$HOLDER" 2>/dev/null || { echo "the connection holder exited early" >&2; exit 1; }
  sleep 0.1
done
[[ -s $WORK/ready ]] || { echo "connections not ready after 150 s" >&2; exit 1; }

in_ns() { ip netns exec "$NS" "$@"; }
cat "$WORK/ready"
SS_COUNT=$(in_ns ss -tanH | wc -l)
TC_PLAIN=$(in_ns "$TCPCHECK" run sockets_bench --checks-dir "$ROOT/bench/checks" --format json | python3 -c 'import json,sys; r=json.load(sys.stdin); print([c for c in r["checks"] if c["id"]=="sockets_bench"][0]["summary"])' 2>/dev/null || echo "?")
TC_OWNERS=$(in_ns "$TCPCHECK" run sockets_bench --checks-dir "$ROOT/bench/checks" --set owners=1 --format json | python3 -c 'import json,sys; r=json.load(sys.stdin); print([c for c in r["checks"] if c["id"]=="sockets_bench"][0]["summary"])' 2>/dev/null || echo "?")
echo "ss -tan lines: $SS_COUNT; tcpcheck: $TC_PLAIN; with owners: $TC_OWNERS"

BENCH="$TCPCHECK run sockets_bench --checks-dir $ROOT/bench/checks"
in_ns hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/plain.json" \
  -n "ss -tan" "ss -tan" \
  -n "tcpcheck" "$BENCH --set owners=0"
in_ns hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/owners.json" \
  -n "ss -tanp" "ss -tanp" \
  -n "tcpcheck owners" "$BENCH --set owners=1" \
  -n "tcpcheck owners via /proc" "env TCPCHECK_OWNER_SCAN=proc $BENCH --set owners=1"

python3 - "$WORK/plain.json" "$WORK/owners.json" "$((2 * PAIRS))" <<'EOF'
import json, sys
def load(path):
    return {r["command"]: r for r in json.load(open(path))["results"]}
plain, owners, n = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
def line(label, ref, ours, target):
    wall = ref["mean"] / ours["mean"]
    cpu = (ref["user"] + ref["system"]) / (ours["user"] + ours["system"])
    verdict = "meets" if wall >= target else "MISSES"
    print(f"  {label}: {ref['command']} {ref['mean']:.3f} s, tcpcheck {ours['mean']:.3f} s -> "
          f"{wall:.2f}x by wall time, {cpu:.2f}x by CPU time ({verdict} the target: >= {target:g}x)")
print()
print(f"socket listing at {n} established sockets (mean of runs; ratio = ss time / tcpcheck time):")
line("without owners", plain["ss -tan"], plain["tcpcheck"], 1)
line("with owners   ", owners["ss -tanp"], owners["tcpcheck owners"], 5)
line("owners, /proc ", owners["ss -tanp"], owners["tcpcheck owners via /proc"], 5)
EOF
