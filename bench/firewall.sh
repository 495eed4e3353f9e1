#!/usr/bin/env bash
# Reading a 10,000-rule firewall: tcpcheck's `firewall` check against iptables-save.
# Issue target: with 10,000 rules, reading the firewall takes no more than 1.5x the time of iptables-save.
#
# Loads the rules with iptables-restore into a network namespace this script creates (and deletes
# on exit), then times, inside it, in one hyperfine run:
#   iptables-save -c                                     the standard tool (what an operator would run)
#   tcpcheck run firewall --target 198.18.0.1:8080       no rule decides the port: read + trace + probe
#   tcpcheck run firewall --target 198.18.0.1:9999       a REJECT rule in the middle decides it: its
#                                                        chain's counters are re-read after the probe
#   tcpcheck run firewall                                no target: policies and every DROP/REJECT rule
# and prints each mean with its ratio to iptables-save (wall clock, and user+system CPU).
#
# Needs root, iptables (nf_tables backend), hyperfine, python3.
# Environment: RULES (default 10000), RUNS (default 30), TCPCHECK (binary; default: release build).
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=${RULES:-10000}
RUNS=${RUNS:-30}
BIN=${TCPCHECK:-$PWD/.build-release/release/tcpcheck}

[ "$(id -u)" = 0 ] || { echo "bench/firewall.sh: needs root (it makes a network namespace and loads iptables rules there)" >&2; exit 1; }
for tool in ip iptables-save iptables-restore hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench/firewall.sh: needs $tool (apt-get install -y iproute2 iptables hyperfine python3)" >&2; exit 1; }
done
if [ -z "${TCPCHECK:-}" ]; then
  # Built every time (quick when nothing changed), so the bench measures this checkout.
  echo "building the release binary ($BIN)..."
  swift build -c release --static-swift-stdlib --product tcpcheck --scratch-path .build-release >/dev/null
fi

NS="tcfwbench$$"
RULESFILE=$(mktemp)
OUT=bench/out
mkdir -p "$OUT"
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -f "$RULESFILE"; }
trap cleanup EXIT

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add 198.18.0.1/32 dev lo

# A mix like real rulesets: per-source accepts, a user chain of multiport+conntrack drops,
# rejects with source ports; one tcp-reset REJECT for port 9999 halfway through INPUT.
python3 - "$RULES" > "$RULESFILE" <<'EOF'
import sys
n = int(sys.argv[1])
out = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":svc - [0:0]"]
for i in range(n - 1):
    a, b, port = (i >> 8) & 255, i & 255, 10000 + i
    if i == n // 2:
        out.append("-A INPUT -p tcp -m tcp --dport 9999 -j REJECT --reject-with tcp-reset")
    elif i % 3 == 0:
        out.append(f"-A INPUT -s 10.{a}.{b}.0/24 -p tcp -m tcp --dport {port} -j ACCEPT")
    elif i % 3 == 1:
        out.append(f"-A svc -p tcp -m multiport --dports {port},{port + 1} -m conntrack --ctstate NEW -j DROP")
    else:
        out.append(f"-A INPUT -d 10.{a}.{b}.1/32 -p tcp -m tcp --sport {port} -j REJECT --reject-with tcp-reset")
out.append("-A INPUT -j svc")
out += ["COMMIT", ""]
print("\n".join(out), end="")
EOF
ip netns exec "$NS" iptables-restore < "$RULESFILE"
loaded=$(ip netns exec "$NS" iptables-save | grep -c '^-A' || true)
echo "namespace $NS: $loaded rules loaded ($(ip netns exec "$NS" iptables --version))"

# -N: no shell; -i: the check exits 1 when it finds the REJECT, which is the point.
ip netns exec "$NS" hyperfine -N -i --warmup 3 --runs "$RUNS" --export-json "$OUT/firewall.json" \
  -n "iptables-save -c" "iptables-save -c" \
  -n "tcpcheck run firewall --target 198.18.0.1:8080" "$BIN run firewall --target 198.18.0.1:8080" \
  -n "tcpcheck run firewall --target 198.18.0.1:9999" "$BIN run firewall --target 198.18.0.1:9999" \
  -n "tcpcheck run firewall" "$BIN run firewall" >/dev/null

python3 - "$OUT/firewall.json" "$loaded" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]
cpu = lambda r: r["user"] + r["system"]
print(f"\n{sys.argv[2]} rules; mean of each command, and its ratio to iptables-save (target: <= 1.5x)")
print(f"{'command':50} {'wall ms':>9} {'ratio':>6} {'cpu ms':>8} {'ratio':>6}")
for r in results:
    print(f"{r['command']:50} {r['mean'] * 1000:9.1f} {r['mean'] / base['mean']:6.2f} {cpu(r) * 1000:8.1f} {cpu(r) / cpu(base):6.2f}")
EOF
