#!/usr/bin/env bash
# The verdict's cost, in one run, with the ratios:
#
#   port_open on a closed port, with the verdict rules   vs  nc -z (the standard tool for the same probe)
#   2000 suspected causes (100 ids) through the rules     vs  an empty check (tcpcheck's start-up floor)
#
# and, from the JSON reports, the time outside the checks (catalog, resolution, report) and the verdict rules' share.
# Runs in a network namespace made for the run (loopback only; one connect to 127.0.0.1:9, nothing listens),
# removed at the end. Needs root, hyperfine, iproute2, netcat-openbsd, python3.
#
# Usage: sudo bench/verdict.sh
# Env:   RUNS=30 (hyperfine runs per command), TCPCHECK=path to a tcpcheck binary
set -euo pipefail

RUNS=${RUNS:-30}
cd "$(dirname "$0")/.."
ROOT=$(pwd)

[[ $(id -u) -eq 0 ]] || { echo "bench/verdict.sh needs root (network namespaces); run it with sudo" >&2; exit 1; }
for tool in hyperfine ip nc python3; do
  command -v "$tool" >/dev/null || { echo "bench/verdict.sh needs $tool" >&2; exit 1; }
done

if [[ -z ${TCPCHECK:-} ]]; then
  echo "building tcpcheck (release, scratch path .build-release)…"
  swift build -c release --product tcpcheck --scratch-path .build-release >/dev/null
  TCPCHECK="$ROOT/.build-release/release/tcpcheck"
fi

NS="tcbverd$$"
WORK=$(mktemp -d)
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up

in_ns() { printf 'ip netns exec %s %s' "$NS" "$*"; }
compare() {   # name, tcpcheck command, reference command, reference label
  local name=$1 ours=$2 theirs=$3 label=$4
  hyperfine -N -i --warmup 3 --runs "$RUNS" --export-json "$WORK/$name.json" -n tcpcheck "$ours" -n reference "$theirs" >/dev/null 2>&1 \
    || hyperfine -i --warmup 3 --runs "$RUNS" --export-json "$WORK/$name.json" -n tcpcheck "$ours" -n reference "$theirs" >/dev/null
  python3 - "$WORK/$name.json" "$name" "$label" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, theirs = r["tcpcheck"]["mean"] * 1000, r["reference"]["mean"] * 1000
print(f"{sys.argv[2]:<16} tcpcheck {ours:8.2f} ms   {sys.argv[3]:<12} {theirs:8.2f} ms   ratio {ours / theirs:5.2f}")
PY
}
# Report duration minus the checks' own durations: what the runner and the verdict add.
overhead() {   # name, tcpcheck arguments...
  local name=$1; shift
  for _ in 1 2 3 4 5; do ip netns exec "$NS" "$TCPCHECK" "$@" --format json || true; done > "$WORK/$name.runs" 2>/dev/null
  python3 - "$WORK/$name.runs" "$name" <<'PY'
import json, sys
text, out, dec, i = open(sys.argv[1]).read(), [], json.JSONDecoder(), 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    doc, i = dec.raw_decode(text, i)
    out.append((doc["duration_ms"] - sum(c["duration_ms"] for c in doc["checks"]), doc["verdict"]["duration_ms"]))
out.sort()
outside, rules = out[len(out)//2]
print(f"{sys.argv[2]:<16} outside the checks: {outside:.2f} ms (catalog, resolution, report), of which the verdict rules {rules:.2f} ms (median of 5 runs; method {doc['verdict']['method']})")
PY
}

echo "mean wall time over $RUNS runs (hyperfine), inside namespace $NS:"
compare port_open_rst "$(in_ns "$TCPCHECK" run port_open --target 127.0.0.1:9 --format json)" "$(in_ns nc -z -w 1 127.0.0.1 9)" "nc -z"
compare many_causes "$(in_ns "$TCPCHECK" run bench_causes --checks-dir "$ROOT/bench/checks" --format json)" \
  "$(in_ns "$TCPCHECK" run bench_noop --checks-dir "$ROOT/bench/checks" --format json)" "empty check"
overhead port_open_rst run port_open --target 127.0.0.1:9
overhead many_causes run bench_causes --checks-dir "$ROOT/bench/checks"
