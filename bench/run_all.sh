#!/usr/bin/env bash
# bench/run_all.sh: the whole run against an open loopback port, beside `nc -z`
# for the same probe, and the cost of starting Lua and a check.
# Targets (issue 2): `tcpcheck run all --target 127.0.0.1:PORT` under 50 ms wall,
# median, in a release build on this 2-core machine; starting Lua and a check
# well under 1 ms each.
# Usage: bench/run_all.sh [RUNS]     (TCPCHECK_BIN=path to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}
command -v nc >/dev/null || { echo "bench/run_all.sh needs nc (apt-get install -y netcat-openbsd)" >&2; exit 2; }

. bench/lib.sh
bench_binary run_all
bench_work run
bench_hold_listener
port=$hold_port

# Trivial checks, to price loading Lua plus one check: 1 against 51 of them.
mkdir -p "$work/one" "$work/many"
for i in $(seq 0 50); do
  f="return { id = \"noop$i\", order = 100, run = function(ctx) return { status = \"pass\", summary = \"ok\" } end }"
  [ "$i" -eq 0 ] && echo "$f" > "$work/one/noop0.lua"
  echo "$f" > "$work/many/noop$i.lua"
done

hyperfine -N -i --warmup 5 --runs "$runs" --export-json "$work/h.json" \
  -n "nc -z" "nc -z -w 3 127.0.0.1 $port" \
  -n "tcpcheck --version" "$bin --version" \
  -n "tcpcheck run port_open" "$bin run port_open --target 127.0.0.1:$port" \
  -n "tcpcheck run all" "$bin run all --target 127.0.0.1:$port" \
  -n "run noop0, 1 custom check" "$bin run noop0 --checks-dir $work/one" \
  -n "run noop0, 51 custom checks" "$bin run noop0 --checks-dir $work/many" >/dev/null

python3 - "$work/h.json" <<'PY'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in r.items()}
nc = med["nc -z"]
print(f"{'command':34} {'median':>9} {'min':>8}  vs nc -z")
for k, v in r.items():
    print(f"{k:34} {med[k]:8.1f}ms {min(v['times'])*1000:7.1f}ms  {med[k]/nc:6.1f}x")
all_ms = med["tcpcheck run all"]
print(f"\nrun all: median {all_ms:.1f} ms (target < 50 ms): {'OK' if all_ms < 50 else 'OVER'}")
per = (med["run noop0, 51 custom checks"] - med["run noop0, 1 custom check"]) / 50
print(f"loading Lua + one check (sandbox, prelude, compile, metadata): {per*1000:.0f} us each (target well under 1 ms)")
PY
