# Shared by the bench scripts: hyperfine and the release binary, a work folder
# removed on exit, and a loopback listener that keeps each connection open, as
# a real server does.
# Usage (after `set -euo pipefail`): . bench/lib.sh; bench_binary NAME; bench_work NAME; bench_hold_listener
# Sets: bin (the binary), work (the folder), listener_pid, hold_port.

# Needs hyperfine; bin is TCPCHECK_BIN, or the release build of this checkout (built every time, which
# is quick when nothing changed: a binary left from an older checkout would be measured without a word);
# bench/out exists.
bench_binary() {
  command -v hyperfine >/dev/null || { echo "bench/$1.sh needs hyperfine (apt-get install -y hyperfine)" >&2; exit 2; }
  if [ -z "${TCPCHECK_BIN:-}" ]; then
    swift build -c release --static-swift-stdlib --product tcpcheck --scratch-path .build-release >&2
  fi
  bin=${TCPCHECK_BIN:-.build-release/release/tcpcheck}
  mkdir -p bench/out
}

bench_work() {
  work=$(mktemp -d "/tmp/tcpcheck-bench-$1.XXXXXX")
  listener_pid=
  trap 'if [ -n "$listener_pid" ]; then kill "$listener_pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
}

# Starts bench/hold_listener.py and waits (5 s at most) for the port it took.
bench_hold_listener() {
  python3 bench/hold_listener.py "$work/port" &
  listener_pid=$!
  for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { echo "the test listener did not start in 5 s" >&2; exit 2; }
  hold_port=$(cat "$work/port")
}
