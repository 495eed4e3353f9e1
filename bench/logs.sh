#!/usr/bin/env bash
# bench/logs.sh: the last 2,000 lines of a 5 GiB log, tcpcheck against `tail -n 2000`.
# Target (issue): no more than 3x the time of tail on the same file, whatever its size.
#
# The 5 GiB file is sparse (truncate) with 5,000 real lines at the end; a 5 MiB
# file of real lines shows the cost does not grow with size. Both are deleted
# at exit. Measured with hyperfine (warm page cache):
#   - tail -n 2000 FILE
#   - the whole binary, a tiny check that only calls logs.tail (process start,
#     catalog load, sandbox, report included)
#   - the whole binary, the real `logs` check (also reads /dev/kmsg, syslog...)
#   - the primitive in isolation: the runner's duration_ms of the tiny check
#     (sandbox call, read, cleaning, Lua table), averaged over runs.
# Usage: bench/logs.sh [RUNS]      (TCPCHECK_BIN=path to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}
bin=${TCPCHECK_BIN:-.build/release/tcpcheck}
command -v hyperfine >/dev/null || { echo "bench/logs.sh needs hyperfine (apt-get install -y hyperfine)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/logs.sh needs python3" >&2; exit 2; }
if [ ! -x "$bin" ]; then swift build -c release >&2; fi

work=$(mktemp -d /tmp/tcpcheck-bench-logs.XXXXXX)
trap 'rm -rf "$work"' EXIT
big=$work/big.log small=$work/small.log

python3 - "$big" "$small" <<'PY'
import os, sys
big, small = sys.argv[1], sys.argv[2]
def line(i):
    return ("Nov 24 21:%02d:%02d web nginx[%d]: 198.18.%d.%d - - \"GET /api/items/%d HTTP/1.1\" 200 %d \"-\" \"curl/8.5\"\n"
            % (i // 60 % 60, i % 60, 800 + i % 7, i % 200, i % 250, i, 100 + i % 9000))
with open(big, "wb") as f:
    f.truncate(5 << 30)                      # 5 GiB of hole, no disk used
    f.seek(0, os.SEEK_END)
    f.write("".join(line(i) for i in range(5000)).encode())
with open(small, "wb") as f:
    i = 0
    while f.tell() < 5 << 20:
        f.write("".join(line(j) for j in range(i, i + 1000)).encode()); i += 1000
PY

mkdir -p "$work/checks"
cat > "$work/checks/tail_only.lua" <<'LUA'
-- tail_only: benchmark helper; reads the last 2000 lines of --set log=PATH through logs.tail.
-- --set mode=match looks for the logs check's kind of substrings instead of returning every line.
return {
  id = "tail_only", title = "logs.tail only", order = 99, needs_target = false,
  run = function(ctx)
    local path = ctx.options.list.log[1]
    local opts = { lines = 2000 }
    if ctx.options.set.mode == "match" then opts.match = { "syn flooding on port", "too many open files", "table full" } end
    local r = logs.tail(path, opts)
    if not r.ok then return { status = "error", summary = r.message } end
    return { status = "pass", summary = r.count .. " lines, " .. r.scanned_bytes .. " bytes read" }
  end,
}
LUA

ls -ls "$big" "$small" | awk '{printf "  %-60s apparent %6.0f MiB, on disk %5.1f MiB\n", $NF, $6/1048576, $1/1024}'
"$bin" run tail_only --checks-dir "$work/checks" --set "log=$big" --no-color | grep tail_only

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" \
  -n "tail 5G" "tail -n 2000 $big" \
  -n "tail 5M" "tail -n 2000 $small" \
  -n "tcpcheck tail_only 5G" "$bin run tail_only --checks-dir $work/checks --set log=$big" \
  -n "tcpcheck tail_only 5M" "$bin run tail_only --checks-dir $work/checks --set log=$small" \
  -n "tcpcheck logs check 5G" "$bin run logs --set log=$big" \
  -n "tcpcheck list (start-up only)" "$bin list" >/dev/null

# The primitive in isolation: the runner's own timing of the tiny check.
for f in big small; do
  for mode in lines match; do
    for _ in $(seq "$runs"); do
      "$bin" run tail_only --checks-dir "$work/checks" --set "log=$work/$f.log" --set "mode=$mode" --format json || true
    done > "$work/inproc-$f-$mode.json"
  done
done

python3 - "$work" <<'PY'
import json, sys, statistics
work = sys.argv[1]
h = {r["command"]: r for r in json.load(open(work + "/h.json"))["results"]}
med = lambda name: h[name]["median"] * 1000
low = lambda name: h[name]["min"] * 1000
tail = med("tail 5G")
print("\nWhole process (hyperfine, %d runs; median and min, ratio of medians):" % len(h["tail 5G"]["times"]))
for name in h:
    print("  %-32s %7.2f ms (min %6.2f)  %5.1fx tail 5G" % (name, med(name), low(name), med(name) / tail))

def durations(path):
    # One JSON report per run, concatenated: the tail_only check's duration_ms in each.
    text, dec, out, i = open(path).read(), json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace(): i += 1
        if i >= len(text): return out
        doc, i = dec.raw_decode(text, i)
        out += [c["duration_ms"] for c in doc["checks"] if c["id"] == "tail_only" and c["status"] == "pass"]
print("\nPrimitive in isolation (runner's duration_ms of the tail_only check, median):")
for f, label in (("big", "5 GiB"), ("small", "5 MiB")):
    for mode in ("lines", "match"):
        d = durations("%s/inproc-%s-%s.json" % (work, f, mode))
        m = statistics.median(d) if d else float("nan")
        print("  %-6s file, %-5s: %6.2f ms (min %5.2f)  %4.2fx tail -n 2000 on the 5 GiB file  (%d runs)"
              % (label, mode, m, min(d) if d else float("nan"), m / tail, len(d)))
print("\nTarget: <= 3x tail. 'lines' returns all 2000 cleaned lines to Lua; 'match' is what the logs check does.")
PY
